"""Board tournaments through the framework: one-line errors with exit 2 from the CLI (an
unknown bot, a missing engine binary), the crosstable in `gamescale report`, the Elo and
final-position pictures, and (slow) a rollout worker killed mid-round on a real local Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

import gamescale
from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.board import TournamentConfig
from gamescale.algorithms.board.tournament import Tournament
from gamescale.envs.registry import make_env
from gamescale.framework.pictures import draw_table
from gamescale.framework.report import print_result_tables
from tests.conftest import require_stockfish


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gamescale", *args], capture_output=True, text=True, timeout=300)


def test_unknown_bot_and_missing_engine_are_one_line_errors_with_exit_2(tmp_path):
    out = tmp_path / "bad-bot"
    bad_bot = _cli("run", "board-hex-mcts", "--set", "algorithm.bots=[random,alphazero]", "--out", str(out))
    assert bad_bot.returncode == 2
    assert bad_bot.stderr.count("\n") == 1 and "unknown bot name 'alphazero' for hex" in bad_bot.stderr
    assert not out.exists()  # nothing partial left behind
    out = tmp_path / "bad-model-bot"
    bad_model_bot = _cli("run", "board-connect4-model", "--set", "algorithm.bots=[random,puct0]", "--out", str(out))
    assert bad_model_bot.returncode == 2 and not out.exists()
    assert bad_model_bot.stderr.count("\n") == 1 and "unknown bot name 'puct0'" in bad_model_bot.stderr
    out = tmp_path / "no-engine"
    no_engine = _cli("run", "board-chess-gauntlet", "--set", "algorithm.stockfish_path=/nonexistent/stockfish",
                     "--out", str(out))
    assert no_engine.returncode == 2
    assert no_engine.stderr.count("\n") == 1 and "'/nonexistent/stockfish' not found" in no_engine.stderr
    assert "apt-get install stockfish" in no_engine.stderr and not out.exists()


def _local_tables(env_name: str, **env_kwargs) -> dict:
    config = TournamentConfig(bots=["random", "mcts4"], games_per_pair=2)
    algo = Tournament(make_env(env_name, **env_kwargs), config)
    state = algo.step(algo.init(0), StepContext(iteration=0, seed=0, shards=LocalShardRunner(None)))[0]
    return algo.tables(state)


def test_report_prints_the_crosstable(tmp_path):
    tables = _local_tables("connect_four")
    pq.write_table(tables["crosstable"], tmp_path / "crosstable.parquet")
    console = Console(record=True, width=120)
    print_result_tables(tmp_path, console)
    text = console.export_text()
    assert "crosstable" in text
    for row in tables["crosstable"].to_pylist():
        assert row["player"] in text and row["score"] in text and row["elo"] in text


@pytest.mark.parametrize("env_name, kwargs", [("connect_four", {}), ("hex", {"size": 5})])
def test_elo_and_final_position_pictures(tmp_path, env_name, kwargs):
    tables = _local_tables(env_name, **kwargs)
    assert [p.name for p in draw_table("elo", tables["elo"], tmp_path)] == ["elo.png"]
    assert [p.name for p in draw_table("games", tables["games"], tmp_path)] == ["final_positions.png"]
    assert (tmp_path / "final_positions.png").read_bytes()[:4] == b"\x89PNG"
    # the MCTS-strength experiment's games table has no final positions: no picture
    assert draw_table("games", tables["games"].drop_columns(["final"]), tmp_path / "none") == []


def _kill_worker_running_an_engine(driver_pid: int, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first rollout worker seen running Stockfish (so: in the middle of a shard)."""
    import psutil

    me = psutil.Process(driver_pid)
    while not stop.is_set() and not killed:
        for child in me.children(recursive=True):
            try:
                if child.name() == "stockfish" and child.ppid() != driver_pid:
                    worker = child.ppid()
                    os.kill(worker, signal.SIGKILL)
                    killed.append(worker)
                    return
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.02)


@pytest.mark.slow
def test_killed_rollout_worker_loses_no_game_and_writes_none_twice(ray_cluster, tmp_path):
    """A rollout worker is SIGKILLed while it plays chess against Stockfish: the framework
    re-issues its shard with the same seed, and the games, PGN files and Elo table equal an
    undisturbed run's, each game exactly once."""
    require_stockfish()
    overrides = {
        "algorithm.bots": ["random"],
        "algorithm.opponents": ["stockfish-n500", "stockfish-n2000"],
        "algorithm.reference": "random",
        "algorithm.games_per_pair": 4,
        "runtime.shards": 4,
        "run.iterations": 2,
    }
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_worker_running_an_engine, args=(os.getpid(), killed, stop), daemon=True)
    killer.start()
    try:
        faulty = gamescale.run("board-chess-gauntlet", overrides=overrides, workers=2, out=tmp_path / "faulty")
    finally:
        stop.set()
        killer.join(timeout=5)
    clean = gamescale.run("board-chess-gauntlet", overrides=overrides, workers=2, out=tmp_path / "clean")
    assert killed, "no worker was seen running an engine"
    assert faulty.summary["shards_reissued"] >= 1 and clean.summary["shards_reissued"] == 0
    games = [pq.read_table(Path(run.dir) / "games.parquet").to_pandas() for run in (faulty, clean)]
    assert len(games[0]) == 2 * 2 * 4 and not games[0].duplicated(["iteration", "game"]).any()
    columns = ["iteration", "game", "first", "second", "winner", "moves", "final"]
    assert games[0][columns].equals(games[1][columns])
    for name in ("pgn/round_001.pgn", "pgn/round_002.pgn", "elo.parquet"):
        assert (Path(faulty.dir) / name).read_bytes() == (Path(clean.dir) / name).read_bytes()
