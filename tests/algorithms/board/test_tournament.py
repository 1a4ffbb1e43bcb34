"""Tournaments (gamescale/algorithms/board/tournament.py) in one process: schedules, every
scheduled game exactly once, the crosstable and Elo table agree with the games, chess
MCTS and PGN, an engine killed mid-tournament (the interrupted game replayed, the
results equal an undisturbed run's), and bad bot names."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import chess.pgn
import numpy as np
import pytest

from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.board import TournamentConfig
from gamescale.algorithms.board.bots import MCTSBot
from gamescale.algorithms.board.tournament import (
    Tournament,
    UnknownBotError,
    check_bot_name,
    pairings,
    players_of,
    round_games,
)
from gamescale.envs.board import chess_batch
from gamescale.envs.registry import make_env
from tests.conftest import require_stockfish


def _run(env, config, rounds=2, num_shards=2):
    algo = Tournament(env, config)
    state = algo.init(0)
    metrics = {}
    for it in range(rounds):
        ctx = StepContext(iteration=it, seed=0, shards=LocalShardRunner(env), num_shards=num_shards)
        state, metrics = algo.step(state, ctx)
    return algo, state, metrics


def test_schedules():
    players = players_of(["a", "b", "c"], "round_robin", [])
    assert pairings(players, ["a", "b", "c"], "round_robin", []) == [(0, 1), (0, 2), (1, 2)]
    players = players_of(["a", "b"], "gauntlet", ["x", "y", "a"])
    assert players == ["a", "b", "x", "y"]
    assert pairings(players, ["a", "b"], "gauntlet", ["x", "y", "a"]) == [(0, 2), (0, 3), (1, 2), (1, 3), (1, 0)]
    games = round_games([(0, 1), (0, 2)], 4)
    assert games[:, 0].tolist() == list(range(8))
    assert games[:4, 1:].tolist() == [[0, 1], [1, 0], [0, 1], [1, 0]]  # colours alternate


def test_round_robin_keeps_every_game_once_and_agrees_with_its_tables():
    config = TournamentConfig(bots=["random", "mcts4", "mcts16"], games_per_pair=2)
    algo, state, metrics = _run(make_env("connect_four"), config, rounds=2, num_shards=3)
    tables = algo.tables(state)
    games = tables["games"].to_pandas()
    assert len(games) == metrics["games"] == 2 * 3 * 2
    assert not games.duplicated(["iteration", "game"]).any()
    assert sorted(games.groupby("iteration").game.apply(list).sum()) == sorted(list(range(6)) * 2)
    # the score column is what the winner column says; moves replay to the final position
    expected = np.where(games.winner < 0, 0.5, (games.winner == 0).astype(float))
    assert np.array_equal(expected, games.score_first)
    from gamescale.envs.board import connect_four_vec

    replayed = connect_four_vec.from_moves([[int(m) for m in ms.split()] for ms in games.moves])
    finals = ["/".join("".join(".xo"[v] for v in row) for row in b) for b in connect_four_vec.boards(replayed)]
    assert finals == games.final.tolist()
    assert np.array_equal(replayed.winner, games.winner.to_numpy())
    # Elo table and crosstable count the same points
    elo = tables["elo"].to_pandas().set_index("player")
    for p in config.bots:
        points = games.score_first[games["first"] == p].sum() + (1 - games.score_first[games["second"] == p]).sum()
        assert elo.loc[p, "score"] == pytest.approx(points)
        assert elo.loc[p, "games"] == 8
        assert metrics[f"elo_{p}"] == pytest.approx(elo.loc[p, "elo"])
    assert elo.loc["random", "elo"] == 0.0 and elo.loc["mcts16", "elo"] > elo.loc["random", "elo"]
    cross = tables["crosstable"].to_pandas()
    assert cross.player.tolist()[0].startswith("1. ") and len(cross) == 3
    totals = [float(s.split("/")[0]) for s in cross.score]
    cells = cross[["1", "2", "3"]].map(lambda c: float(c.split("/")[0]) if c else 0.0).sum(axis=1)
    assert np.allclose(totals, cells)
    # seeded per (run, round, game): the same tournament again plays the same games
    _, again, _ = _run(make_env("connect_four"), config, rounds=2, num_shards=3)
    assert np.array_equal(again["moves"], state["moves"])


def test_hex_tournament_records_boards_of_its_size():
    config = TournamentConfig(bots=["random", "mcts8"], games_per_pair=2)
    algo, state, _ = _run(make_env("hex", size=5), config, rounds=1)
    games = algo.tables(state)["games"].to_pandas()
    assert all(len(f.split("/")) == 5 and all(len(r) == 5 for r in f.split("/")) for f in games.final)
    assert set(games.termination) == {"win"}  # Hex has no draws


def test_chess_mcts_finds_mate_in_one():
    game = chess_batch.game(fen="6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1")
    state = game.init(1)
    action = MCTSBot(48, parallel=4).act(game, state, np.random.default_rng(0))
    assert state.boards[0].uci(chess_batch.legal_moves(state.boards[0])[int(action[0])]) == "a1a8"


def test_unknown_bot_names_and_bad_settings():
    with pytest.raises(UnknownBotError, match="unknown bot name 'alphazero' for connect_four"):
        Tournament(make_env("connect_four"), TournamentConfig(bots=["random", "alphazero"]))
    with pytest.raises(UnknownBotError, match="'stockfish-n5' for hex"):
        check_bot_name("stockfish-n5", "hex")
    with pytest.raises(UnknownBotError):
        check_bot_name("mcts0", "connect_four")
    with pytest.raises(ValueError, match="reference bot 'random' does not play"):
        Tournament(make_env("connect_four"), TournamentConfig(bots=["mcts2", "mcts4"]))
    with pytest.raises(ValueError, match="gauntlet needs"):
        Tournament(make_env("connect_four"), TournamentConfig(schedule="gauntlet"))
    with pytest.raises(ValueError, match="not found"):
        Tournament(make_env("chess"), TournamentConfig(bots=["random", "stockfish-n5"],
                                                       stockfish_path="/nonexistent/stockfish"))


def _kill_first_engine(min_cpu_s: float, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first Stockfish child of this process once it has used `min_cpu_s` seconds
    of CPU time: past its start (about 0.09 s of CPU, loading its network) and into the
    games. Its age was the trigger before (0.4 s), and a round against the 2000-node engine
    could end sooner, with nothing killed; against 20,000 nodes a round takes about 1.4 s of
    the engine's CPU here."""
    import psutil

    me = psutil.Process()
    while not stop.is_set() and not killed:
        for child in me.children(recursive=True):
            try:
                if child.name() == "stockfish" and sum(child.cpu_times()[:2]) >= min_cpu_s:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
                    return
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.02)


def test_a_killed_engine_restarts_and_its_game_is_replayed():
    """Stockfish is SIGKILLed during a round: the engine restarts, the interrupted game is
    played again from its start with its seed, and every game is kept once, equal to an
    undisturbed tournament's (a node limit and a fresh hash per game make Stockfish
    deterministic); the PGN files hold every game."""
    require_stockfish()
    config = TournamentConfig(bots=["random"], schedule="gauntlet", opponents=["stockfish-n20000"],
                              games_per_pair=4, reference="random")
    env = make_env("chess")
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_engine, args=(0.3, killed, stop), daemon=True)
    killer.start()
    try:
        algo, faulty, metrics = _run(env, config, rounds=1, num_shards=1)
    finally:
        stop.set()
        killer.join(timeout=5)
    assert killed, "no engine ran long enough to be killed"
    assert metrics["engine_restarts"] >= 1 and faulty["engine_restarts"].sum() >= 1
    _, clean, _ = _run(env, config, rounds=1, num_shards=1)
    assert clean["engine_restarts"].sum() == 0
    assert faulty["game"].tolist() == clean["game"].tolist() == [0, 1, 2, 3]
    assert faulty["moves"].tolist() == clean["moves"].tolist()
    assert np.array_equal(faulty["winner"], clean["winner"])
    pgn = algo.files(faulty)["pgn/round_001.pgn"].decode()
    stream = io.StringIO(pgn)
    parsed = [chess.pgn.read_game(stream) for _ in range(4)]
    assert chess.pgn.read_game(stream) is None
    for game, moves, winner in zip(parsed, faulty["moves"], faulty["winner"], strict=True):
        assert " ".join(m.uci() for m in game.mainline_moves()) == moves
        assert game.headers["Result"] == {0: "1-0", 1: "0-1", -1: "1/2-1/2"}[int(winner)]
