"""Chess and Chess960 seen as a `BatchGame`, so batch search (UCT) and the match runner
play them with the same code as Connect Four and Hex.

Unlike those engines this is not vectorised: the state holds python-chess boards in an
object array and every call loops over them (python-chess is the rules, as in the AEC
env, with the same action encoding). It is meant for bots with few simulations. A
random rollout to the end of a chess game takes hundreds of plies and says little, so
`rollout_plies` caps it: after that many random plies the side ahead by at least
`material_margin` pawns (1/3/3/5/9) counts as the winner and an even position as a draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import chess
import numpy as np

from gamescale.envs.board.batch import BatchGame
from gamescale.envs.board.chess_env import NUM_ACTIONS, chess960_board, encode_move, legal_moves, parse_fen

_VALUES = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 0}


@dataclass(frozen=True)
class ChessBatchState:
    """`B` chess games.

    boards: object [B]  python-chess boards (never mutated: every step copies)
    plies:  int32 [B]   moves played since the start position
    """

    boards: np.ndarray
    plies: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.plies.shape[0]


def start_board(fen: str | None = None, chess960: bool = False, start_index: int | None = None) -> chess.Board:
    """The start position: a FEN, a Chess960 index, or the standard position."""
    if fen is not None:
        return parse_fen(fen, chess960)
    if start_index is not None:
        return chess960_board(start_index)
    return chess.Board(chess960=chess960)


def from_boards(boards: list[chess.Board]) -> ChessBatchState:
    """A batch state holding copies of `boards`."""
    array = np.empty(len(boards), object)
    for i, board in enumerate(boards):
        array[i] = board.copy()
    return ChessBatchState(array, np.array([len(b.move_stack) for b in boards], np.int32))


def init(batch_size: int, fen: str | None = None, chess960: bool = False, start_index: int | None = None):
    board = start_board(fen, chess960, start_index)
    return from_boards([board] * batch_size)


def _over(board: chess.Board, plies: int, max_plies: int) -> bool:
    return plies >= max_plies or board.is_game_over(claim_draw=False)


def done(state: ChessBatchState, max_plies: int) -> np.ndarray:
    """bool [B]: ended by python-chess's automatic rules, or `max_plies` reached (a draw)."""
    return np.array([_over(b, p, max_plies) for b, p in zip(state.boards, state.plies, strict=True)], bool)


def to_play(state: ChessBatchState) -> np.ndarray:
    return np.array([0 if b.turn == chess.WHITE else 1 for b in state.boards], np.int64)


def legal_mask(state: ChessBatchState, max_plies: int) -> np.ndarray:
    """bool [B, 4168]; all False in finished games."""
    mask = np.zeros((state.batch_size, NUM_ACTIONS), bool)
    for i, (board, plies) in enumerate(zip(state.boards, state.plies, strict=True)):
        if not _over(board, plies, max_plies):
            mask[i, [encode_move(m, board.turn) for m in board.legal_moves]] = True
    return mask


def step(state: ChessBatchState, actions: np.ndarray, max_plies: int) -> ChessBatchState:
    """Play `actions` [B] (ignored in finished games); the boards are copied, never changed."""
    boards = np.empty(state.batch_size, object)
    plies = state.plies.copy()
    for i, (board, action) in enumerate(zip(state.boards, np.asarray(actions), strict=True)):
        if _over(board, plies[i], max_plies):
            boards[i] = board
            continue
        move = legal_moves(board).get(int(action))
        if move is None:
            raise ValueError(f"illegal chess action {int(action)} in position {board.fen()}")
        after = board.copy()  # with its move stack: repetitions and the PGN need the history
        after.push(move)
        boards[i] = after
        plies[i] += 1
    return ChessBatchState(boards, plies)


def winner_of_board(board: chess.Board) -> int:
    """0 (white) / 1 (black) for a checkmate, else -1."""
    outcome = board.outcome(claim_draw=False)
    if outcome is None or outcome.winner is None:
        return -1
    return 0 if outcome.winner == chess.WHITE else 1


def winner(state: ChessBatchState) -> np.ndarray:
    return np.array([winner_of_board(b) for b in state.boards], np.int8)


def material(board: chess.Board) -> int:
    """White's material minus black's, in pawns."""
    total = 0
    for piece in board.piece_map().values():
        total += _VALUES[piece.piece_type] * (1 if piece.color == chess.WHITE else -1)
    return total


def _random_legal_move(board: chess.Board, rng: np.random.Generator) -> chess.Move | None:
    """A uniformly random legal move (None when there is none): pseudo-legal moves in random
    order, the first that does not leave the king in check (cheaper than listing legal moves)."""
    moves = list(board.generate_pseudo_legal_moves())
    for k in rng.permutation(len(moves)):
        if not board.is_into_check(moves[k]):
            return moves[k]
    return None


def capped_rollout(
    state: ChessBatchState, rng: np.random.Generator, max_plies: int, rollout_plies: int, material_margin: int
) -> np.ndarray:
    """int8 [B]: winners after at most `rollout_plies` uniformly random plies (see the module docstring)."""
    result = np.full(state.batch_size, -1, np.int8)
    for i, (start, plies) in enumerate(zip(state.boards, state.plies, strict=True)):
        board = start.copy(stack=False)
        for _ in range(min(rollout_plies, max_plies - int(plies))):
            move = _random_legal_move(board, rng)
            if move is None or board.is_insufficient_material() or board.halfmove_clock >= 150:
                break
            board.push(move)
        won = winner_of_board(board)
        if won >= 0:
            result[i] = won
        elif not board.is_game_over(claim_draw=False):
            balance = material(board)
            result[i] = 0 if balance >= material_margin else 1 if balance <= -material_margin else -1
    return result


def game(
    fen: str | None = None,
    chess960: bool = False,
    start_index: int | None = None,
    max_plies: int = 400,
    rollout_plies: int = 8,
    material_margin: int = 3,
) -> BatchGame:
    """Chess (or Chess960) from one start position as a `BatchGame`; games are drawn at `max_plies`."""
    start_board(fen, chess960, start_index)  # validates the position now, in one line
    return BatchGame(
        "chess960" if chess960 else "chess",
        NUM_ACTIONS,
        max_plies,
        partial(init, fen=fen, chess960=chess960, start_index=start_index),
        partial(legal_mask, max_plies=max_plies),
        partial(step, max_plies=max_plies),
        partial(done, max_plies=max_plies),
        to_play,
        winner,
        partial(capped_rollout, max_plies=max_plies, rollout_plies=rollout_plies, material_margin=material_margin),
    )
