"""Connecting to Ray: an embedded local Ray on 127.0.0.1, or a running cluster.

Ray reads `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER` when it is first imported, and only with it
set to 0 does Ray 2.60 keep a local node on 127.0.0.1 instead of the machine's routable
address. So this module imports Ray only inside `connect`, after deciding the mode, and
the actor classes live in `gamescale.framework.actors`, imported after connecting.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator

from gamescale.algorithms.row_blocks import using_row_threads
from gamescale.framework.errors import ClusterError, print_error

LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _connection_error(hostport: str, timeout_s: float) -> str | None:
    """Why `host:port` does not accept a TCP connection, or None when it does."""
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return None
    except (OSError, ValueError) as exc:
        return str(exc)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with one line when `host:port` does not accept connections."""
    hostport = address.split("://", 1)[-1]
    if address in ("auto", "local") or ":" not in hostport:
        return
    if (error := _connection_error(hostport, timeout_s)) is not None:
        raise ClusterError(f"cannot reach Ray cluster at {address}: {error}")


@contextlib.contextmanager
def _lean_head_params() -> Iterator[None]:
    """While `ray.init` starts the embedded node: no autoscaler monitor, no log monitor.

    Ray 2.60 starts, beside the GCS and the raylet, an autoscaler `monitor.py` (nothing to
    scale on one machine) and a `log_monitor.py` (it forwards worker logs to the driver,
    which `log_to_driver=False` turns away anyway): about 95 MiB PSS and two Python
    start-ups. `ray.init` has no argument for either, but its node parameters
    (`RayParams.no_monitor`, `include_log_monitor`, both fields `ray start` sets) do; they
    are set for this one call. The dashboard head (minimal, no UI) and the raylet's agents
    stay: the raylet fate-shares with its agents, and Ray does not start without the head.
    Where Ray's internals differ (another version), nothing is changed.
    """
    try:
        from ray._private.parameter import RayParams
    except ImportError:  # not Ray 2.60's layout: start Ray as it is
        yield
        return
    original = RayParams.__init__
    if not {"no_monitor", "include_log_monitor"} <= set(original.__code__.co_varnames):
        yield
        return

    def lean_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.no_monitor = True
        self.include_log_monitor = False

    RayParams.__init__ = lean_init
    try:
        yield
    finally:
        RayParams.__init__ = original


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Make sure this process is connected to Ray; returns True if it started Ray itself.

    With no address, an embedded local Ray is started on 127.0.0.1 (sized to the
    machine unless `num_cpus` is given). `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` is what
    makes Ray 2.60 keep its node on 127.0.0.1 instead of the routable address.
    """
    if address is None:
        os.environ.update(LOCAL_ENV)  # before Ray's first import (see module docstring)
    import ray

    if ray.is_initialized():
        if address is not None:
            _check_reachable(address)  # already connected, but a bad address is still an error
        return False
    if address is None:
        # Token authentication stays on (Ray 2.60's default); only its start-up WARNING,
        # which reads like a fault to users, is silenced. The README says auth is on.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
        if constants is not None and getattr(constants, "ENABLE_RAY_CLUSTER", False):
            # Ray was imported before the variable was set (e.g. by the user's script).
            constants.ENABLE_RAY_CLUSTER = False
        with _lean_head_params():
            ray.init(
                address="local",
                num_cpus=num_cpus or os.cpu_count(),
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
                logging_level="WARNING",
                configure_logging=True,
            )
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot join Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    return True


@contextlib.contextmanager
def driver_threads(limit: int | None) -> Iterator[None]:
    """Cap this process's numeric thread pools at `limit` inside the block (restored after).

    A driver that hands work to actors shares the machine's cores with them, and Ray gives
    each actor `OMP_NUM_THREADS` = the CPUs it reserves (1 for a rollout worker, 1 for a
    learner that reserves none). The driver's own BLAS (numpy's OpenBLAS) and torch pools
    default to every core, and their threads wait for each other by spinning: on a busy
    2-core machine a deep MFG network table (a [6760, 128] x [128, 128] product) took
    279 ms with 2 OpenBLAS threads and 32 ms with 1 (torch: 125 vs 23 ms). BLAS pools are
    capped through threadpoolctl, torch's with `torch.set_num_threads` when it is loaded.
    The driver's row blocks (`algorithms.row_blocks`) get `limit` threads too.
    """
    if limit is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(using_row_threads(limit))
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=limit))
        except ImportError:  # without threadpoolctl only torch is capped
            pass
        torch = sys.modules.get("torch")
        if torch is not None:
            before = torch.get_num_threads()
            torch.set_num_threads(limit)
            stack.callback(torch.set_num_threads, before)
        yield


def head_answers(gcs_address: str, timeout_s: float = 1.0) -> bool:
    """Whether the cluster's head (its GCS) accepts a TCP connection."""
    return _connection_error(gcs_address, timeout_s) is None


class HeadWatch:
    """Ends the driver with one clear line when the cluster's head stops answering.

    When the head (its GCS) dies, Ray's core worker in the driver retries for
    `gcs_rpc_server_reconnect_timeout_s` (60 s by default) and then terminates the
    process with a message about GCS logs; calls in flight meanwhile block or fail with
    unrelated-looking errors. This thread probes the head's GCS port while Ray is
    connected and, once the head has been silent for `grace_s` (set below Ray's own
    limit, so the head may still come back when GCS fault tolerance is configured),
    prints `message` and exits with status 2. Every file of the run is written
    atomically, so the run directory keeps its newest checkpoint for `gamescale resume`.
    """

    def __init__(self, message: str, grace_s: float, poll_s: float = 0.5):
        self.message = message
        self.grace_s = grace_s
        self.poll_s = poll_s
        self._address: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gamescale-head-watch", daemon=True)

    def start(self) -> HeadWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def head_lost(self, settle_s: float = 0.0) -> bool:
        """True when Ray was connected and its head does not answer now or within
        `settle_s`: a dying head takes its raylet and workers down (so calls fail) a moment
        before its GCS port closes."""
        address = self._gcs_address()
        if address is None:
            return False
        deadline = time.monotonic() + settle_s
        while head_answers(address):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def _gcs_address(self) -> str | None:
        if self._address is None:
            ray = sys.modules.get("ray")  # the watch never imports Ray: exact runs stay Ray-free
            try:  # Ray may be half imported by the main thread (no is_initialized yet)
                if ray is not None and ray.is_initialized():
                    self._address = ray.get_runtime_context().gcs_address
            except Exception:  # importing, connected moments ago or shutting down: try on the next poll
                return None
            if self._address is not None:
                report_to_supervisor(f"head\t{self._address}\t{self.message}")
        return self._address

    def _watch(self) -> None:
        silent_since: float | None = None
        while not self._stop.wait(self.poll_s):
            address = self._gcs_address()
            if address is None or head_answers(address):
                silent_since = None
                continue
            silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since >= self.grace_s and not self._stop.is_set():
                print_error(self.message)
                report_to_supervisor("exit")
                os._exit(2)


# --------------------------------------------------------------------------- supervised drivers

SUPERVISOR_FD_ENV = "GAMESCALE_SUPERVISOR_FD"


def _adopt_supervisor_fd() -> int | None:
    """The pipe to a supervising `gamescale` process, taken out of the environment (so no
    process this one starts writes to a number that means another file there) and closed
    on exec."""
    value = os.environ.pop(SUPERVISOR_FD_ENV, None)
    try:
        fd = int(value) if value else None
        if fd is not None:
            os.set_inheritable(fd, False)
        return fd
    except (OSError, ValueError):
        return None


_SUPERVISOR_FD = _adopt_supervisor_fd()
if _SUPERVISOR_FD is not None:
    # A normal end of the interpreter says `exit`; so do the CLI's error lines (`cli._fail`),
    # which Ray's own exit handler (it runs first) might otherwise end abruptly.
    atexit.register(lambda: report_to_supervisor("exit"))


def is_supervised() -> bool:
    """Whether this process is a driver run by `supervise`."""
    return _SUPERVISOR_FD is not None


def report_to_supervisor(line: str) -> None:
    """Tell the supervising `gamescale` process (if any) one line: `head\\t<gcs>\\t<message>`
    once the head is known, `exit` when this driver ends by its own hand."""
    if _SUPERVISOR_FD is None:
        return
    try:
        os.write(_SUPERVISOR_FD, f"{line}\n".encode())
    except OSError:  # the supervisor went first; nothing to tell
        pass


def supervise(command: list[str]) -> int:
    """Run a driver `command` as a child and speak for it if it dies without a word.

    Ray's core worker ends a driver whose node went away with a bare `_exit(1)` and a line in
    its own log file, not on stderr: the first write to the dead node's object store ("The
    connection to the plasma store is failed. Terminate the process.") comes before any
    Python handler or `HeadWatch` can speak. The child reports its head's GCS address (and
    the line to print if it is lost) and, when it ends by its own hand, `exit`, through a
    pipe. A child that ends without `exit` is reported here: the head-lost line with exit
    status 2 when its head no longer answers, else a line naming the abrupt end. Returns the
    exit status for this process.
    """
    import signal
    import subprocess

    read_fd, write_fd = os.pipe()
    child = subprocess.Popen(command, env={**os.environ, SUPERVISOR_FD_ENV: str(write_fd)}, pass_fds=(write_fd,))
    os.close(write_fd)
    # The terminal sends Ctrl-C to the whole process group: the child handles it. A
    # termination sent to this process alone (a job stopped, say) is passed on.
    passed_on: list[int] = []

    def pass_on(signum: int, _frame: object) -> None:
        passed_on.append(signum)
        child.send_signal(signum)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, pass_on),
    }
    try:
        status = child.wait()
        reports = _read_all(read_fd).splitlines()
    finally:
        os.close(read_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    code = status if status >= 0 else 128 - status
    if status == 0 or "exit" in reports or -status in passed_on:  # a stop asked for is no news
        return code
    heads = [line.split("\t", 2) for line in reports if line.startswith("head\t")]
    if heads and len(heads[-1]) == 3 and not head_answers(heads[-1][1]):
        message = heads[-1][2]
        code = 2
    else:
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        message = (
            f"the driver process ended without a word ({how}); Ray's log of it is the cluster's "
            "logs/python-core-driver-*.log"
        )
    print_error(message)
    return code


def _read_all(fd: int) -> str:
    """Everything written to the pipe so far (without waiting for writers that may linger)."""
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
