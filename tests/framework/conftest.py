"""What the framework tests that start clusters of their own (beside the session's
`ray_cluster`) share: free local ports, and a background process stopped the way a
`ray start --block` head must be (SIGTERM: Ray drains and stops exactly the processes it
started; `ray stop` would stop every Ray on the machine)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@contextlib.contextmanager
def background_process(args: list[str], grace_s: float = 90, **popen_kwargs) -> Iterator[subprocess.Popen]:
    """Run `args` while the block runs; then SIGTERM, and SIGKILL after `grace_s` seconds."""
    process = subprocess.Popen(args, **popen_kwargs)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def ports():
    """`free_ports`: `ports(4)` gives four distinct free local ports."""
    return free_ports


@pytest.fixture(scope="session")
def background():
    """`background_process`: `with background(args, **popen_kwargs) as process: ...`."""
    return background_process
