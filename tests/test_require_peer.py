"""`require_peer` (tests/conftest.py): a missing peer skips on a developer's machine and fails under CI."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import require_peer


@pytest.fixture
def missing_peer(monkeypatch):
    monkeypatch.setitem(sys.modules, "gamescale_absent_peer", None)  # import raises ImportError
    return "gamescale_absent_peer"


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_peer_fails_under_ci(monkeypatch, missing_peer, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="required when CI is set"):
        require_peer(missing_peer)


@pytest.mark.parametrize("ci", [None, "false", "0"])
def test_missing_peer_skips_outside_ci(monkeypatch, missing_peer, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_peer(missing_peer)


def test_present_peer_is_returned(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert require_peer("json") is sys.modules["json"]
