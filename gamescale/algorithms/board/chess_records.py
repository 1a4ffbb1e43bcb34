"""Chess games as files: PGN text from a start position and UCI moves, and SVG boards
(python-chess's `chess.svg`) from a FEN."""

from __future__ import annotations

import chess
import chess.pgn
import chess.svg

_RESULTS = {chess.WHITE: "1-0", chess.BLACK: "0-1", None: "1/2-1/2"}


def replay(moves: str, start: str | None = None, chess960: bool = False) -> chess.Board:
    """The board after the space-separated UCI `moves` from `start` (a FEN; standard if None)."""
    board = chess.Board(start, chess960=chess960) if start else chess.Board(chess960=chess960)
    for uci in moves.split():
        board.push_uci(uci)
    return board


def pgn_text(
    white: str,
    black: str,
    moves: str,
    start: str | None = None,
    chess960: bool = False,
    round_number: int = 1,
    game_number: int = 1,
    termination: str = "",
    event: str = "gamescale tournament",
) -> str:
    """One game as PGN; a game stopped at the ply limit is a draw ("max_plies")."""
    board = replay(moves, start, chess960)
    game = chess.pgn.Game.from_board(board)
    outcome = board.outcome(claim_draw=False)
    result = _RESULTS[outcome.winner] if outcome is not None else "1/2-1/2"
    game.headers.update({
        "Event": event,
        "Site": "gamescale",
        "Round": f"{round_number}.{game_number}",
        "White": white,
        "Black": black,
        "Result": result,
    })
    if chess960:
        game.headers["Variant"] = "Chess960"
    if termination:
        game.headers["Termination"] = termination
    return str(game)


def svg_board(fen: str, size: int = 280) -> str:
    """An SVG picture of the position `fen`."""
    return chess.svg.board(chess.Board(fen), size=size)
