"""The supervisor of a driver that joins a running cluster (`runtime.supervise`): Ray ends
such a driver with a bare exit status when its node's object store goes, and the supervisor
says what happened in the driver's place. The children here are small Python processes that
speak the driver's side of the pipe."""

from __future__ import annotations

import socket
import sys

import pytest

from gamescale.framework.runtime import supervise


def child(body: str) -> list[str]:
    """A child that reports through the supervisor's pipe as a driver does, then runs `body`."""
    prelude = "import os, signal\nfrom gamescale.framework.runtime import report_to_supervisor as report\n"
    return [sys.executable, "-c", prelude + body]


@pytest.fixture
def live_head():
    """A listening TCP port on 127.0.0.1: a head that answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def dead_head() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    return f"127.0.0.1:{port}"


def test_a_driver_killed_after_its_head_went_is_reported_as_the_head_lost(capfd):
    code = supervise(child(f"report('head\\t{dead_head()}\\tlost the cluster; resume it')\nos._exit(1)"))
    assert code == 2
    assert capfd.readouterr().err.strip().splitlines() == ["gamescale: error: lost the cluster; resume it"]


def test_a_driver_killed_while_its_head_answers_is_named_with_its_status(capfd, live_head):
    code = supervise(child(f"report('head\\t{live_head}\\tlost')\nos.kill(os.getpid(), signal.SIGKILL)"))
    assert code == 128 + 9
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ended without a word (killed by signal 9)" in err[0]


def test_a_driver_that_ends_by_its_own_hand_speaks_for_itself(capfd):
    # its own error line and status pass through untouched, head or no head
    body = f"report('head\\t{dead_head()}\\tlost')\nimport sys\nprint('gamescale: error: bad', file=sys.stderr)\nsys.exit(2)"
    assert supervise(child(body)) == 2
    assert capfd.readouterr().err.strip().splitlines() == ["gamescale: error: bad"]
    assert supervise(child("pass")) == 0
    assert capfd.readouterr().err == ""


def test_the_pipe_is_not_handed_on_to_the_drivers_own_children(capfd):
    # the variable naming the pipe is gone from the driver's environment once it is adopted
    body = "print(os.environ.get('GAMESCALE_SUPERVISOR_FD'))"
    assert supervise(child(body)) == 0
    assert capfd.readouterr().out.strip() == "None"


def test_a_termination_sent_to_the_supervisor_is_passed_on_without_comment(capfd):
    """A job stopped by SIGTERM to the `gamescale` process: the driver gets it and nothing is
    said about an abrupt end the user asked for."""
    import os
    import signal
    import threading

    body = "import time\nreport('head\\t127.0.0.1:1\\tlost')\ntime.sleep(30)"
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code = supervise(child(body))
    finally:
        timer.cancel()
    assert code == 128 + signal.SIGTERM
    assert capfd.readouterr().err == ""
