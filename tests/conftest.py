"""Shared fixtures: one real local Ray cluster (num_cpus=2) for every test that needs actors,
the smallest distillation lab (tests/envs/lm and tests/algorithms/lm), and `require_peer`,
the import of a peer library that agreement tests compare against."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

# Shard functions defined in test modules are imported by name (`tests.framework...`) in
# Ray's worker processes, which inherit this environment. The repository goes first on
# their path: a package that ships a top-level `tests` into site-packages (pgx, a bench
# peer, does) would otherwise shadow this one there.
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO, os.environ.get("PYTHONPATH", "")) if p)

T = TypeVar("T")


def in_ci() -> bool:
    """True when the environment says this is a CI run (`CI=true`, as GitHub Actions and most CIs set)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_peer(module: str) -> ModuleType:
    """Import `module`, a peer implementation (pyspiel, mfglib, aequilibrae, ...) a test compares with.

    Without it the test (or, called at module level, the whole module) is skipped on a
    developer's machine, but fails under `CI=true`: an agreement check that silently skips
    in CI checks nothing. Use it instead of `pytest.importorskip` for peers:

        from tests.conftest import require_peer
        pyspiel = require_peer("pyspiel")
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if in_ci():
            pytest.fail(f"peer {module!r} is required when CI is set ({error})", pytrace=False)
        pytest.skip(f"peer {module!r} is not installed ({error})", allow_module_level=True)


def require_system_program(find: Callable[[], T], missing: type[Exception]) -> T:
    """`find()` for a system program a test needs (Stockfish, FluidSynth): where it raises
    `missing`, the test is skipped on a developer's machine and fails under `CI=true`,
    whose set-up (`make system-packages`) installs it."""
    try:
        return find()
    except missing as err:
        if in_ci():
            pytest.fail(f"CI needs it: {err}", pytrace=False)
        pytest.skip(str(err))


def require_stockfish() -> str:
    """The Stockfish binary (see `require_system_program`)."""
    from gamescale.algorithms.board.stockfish import EngineNotFoundError, find_stockfish

    return require_system_program(find_stockfish, EngineNotFoundError)


@pytest.fixture(scope="session")
def ray_cluster():
    """The session's local Ray on 127.0.0.1; yields its GCS address (host:port)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            logging_level="WARNING",
        )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def tiny_distill_lab() -> dict:
    """Keyword arguments of a `distill_lab` env small enough for unit tests whose teacher
    still learns from its oracle (30 steps)."""
    return dict(
        vocab_size=12,
        prompt_length=3,
        completion_length=5,
        oracle={"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64},
        teacher={"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
        oracle_sharpness=4.0,
        oracle_init_scale=3.0,
        teacher_steps=30,
        num_eval_prompts=32,
    )
