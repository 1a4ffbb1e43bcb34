"""Connecting to Ray: an embedded local Ray on 127.0.0.1, or a running cluster.

Ray reads `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER` when it is first imported, and only with it
set to 0 does Ray 2.60 keep a local node on 127.0.0.1 instead of the machine's routable
address. So this module imports Ray only inside `connect`, after deciding the mode, and
the actor classes live in `gamescale.framework.actors`, imported after connecting.
"""

from __future__ import annotations

import logging
import os
import socket

from gamescale.framework.errors import ClusterError

LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with one line when `host:port` does not accept connections."""
    hostport = address.split("://", 1)[-1]
    if address in ("auto", "local") or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot reach Ray cluster at {address}: {exc}") from None


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
