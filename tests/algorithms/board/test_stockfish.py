"""Stockfish over UCI: strength settings reach the engine, Chess960 works, a missing
binary is a one-line error. Skipped without Stockfish, except under CI=true (fails)."""

from __future__ import annotations

import chess
import pytest

from gamescale.algorithms.board.stockfish import EngineNotFoundError, StockfishBot
from tests.conftest import require_stockfish


def test_missing_binary_is_one_line():
    with pytest.raises(EngineNotFoundError, match="not found") as err:
        StockfishBot(path="/nonexistent/stockfish")
    assert "\n" not in str(err.value) and "apt-get install stockfish" in str(err.value)


def test_plays_legal_moves_with_each_strength_setting():
    require_stockfish()
    board = chess.Board()
    for bot in (StockfishBot(elo=1400, nodes=500), StockfishBot(skill_level=0, nodes=500), StockfishBot(nodes=200)):
        with bot:
            assert bot.move(board) in board.legal_moves
    with pytest.raises(ValueError, match="UCI_Elo range"), StockfishBot(elo=100) as bot:
        bot.move(board)


def test_finds_mate_in_one_and_plays_chess960():
    require_stockfish()
    with StockfishBot(nodes=2000) as bot:
        board = chess.Board("6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1")  # back-rank mate: Ra8#
        assert bot.move(board).uci() == "a1a8"
        frc = chess.Board.from_chess960_pos(0)
        assert bot.move(frc) in frc.legal_moves


def test_restarts_after_the_engine_process_dies():
    require_stockfish()
    with StockfishBot(nodes=200) as bot:
        board = chess.Board()
        bot.move(board)
        bot.engine.transport.kill()  # the engine process dies between moves
        with pytest.raises(chess.engine.EngineTerminatedError):
            bot.move(board)
        assert bot.move(board) in board.legal_moves  # a fresh process took over
