"""Chess and Chess960 as PettingZoo AEC envs, with python-chess as the rules.

Actions (4168) are moves seen from the side to move: squares of black's moves are
mirrored rank-wise first, so both colours use the same numbers. A move from square `f`
to `t` (0 = a1 .. 63 = h8; queen promotions included) is `f * 64 + t`; an
under-promotion to a knight, bishop or rook is `4096 + (file(f) * 3 + dir) * 3 + piece`
with `dir` 0/1/2 for a capture to the left / a push / a capture to the right and
`piece` 0/1/2. Castling is the king's move as python-chess writes it: two squares in
standard chess (e1g1) and onto its own rook in Chess960 (f1h1), so every legal move has
exactly one action in both games. FEN and UCI go in and out (`fen`, `uci_to_action`,
`action_to_uci`); Chess960 starting positions are numbered 0..959 (518 is standard).

Observation: `int8 [8, 8, 18]` from the side to move (the board flipped for black):
planes 0-5 its pawns, knights, bishops, rooks, queens, king; 6-11 the opponent's; 12-15
castling rights (own king side, own queen side, opponent's king side, queen side); 16
the en-passant target square; 17 ones when the observer plays black. Games end by
python-chess's automatic rules (mate, stalemate, insufficient material, seventy-five
moves, fivefold repetition); `max_plies` truncates.
"""

from __future__ import annotations

import chess
import numpy as np

from gamescale.envs.board.aec import DRAW, IllegalMoveError, TwoPlayerBoardEnv

NUM_ACTIONS = 64 * 64 + 8 * 3 * 3
STANDARD_CHESS960_INDEX = 518
_UNDERPROMOTIONS = (chess.KNIGHT, chess.BISHOP, chess.ROOK)


class BoardInputError(ValueError):
    """A malformed FEN, an unknown Chess960 index or a move that cannot be read."""


def encode_move(move: chess.Move, turn: chess.Color) -> int:
    """The action of `move` played by `turn` (see the module docstring)."""
    start, end = move.from_square, move.to_square
    if turn == chess.BLACK:
        start, end = chess.square_mirror(start), chess.square_mirror(end)
    if move.promotion in _UNDERPROMOTIONS:
        direction = chess.square_file(end) - chess.square_file(start) + 1
        piece = _UNDERPROMOTIONS.index(move.promotion)
        return 4096 + (chess.square_file(start) * 3 + direction) * 3 + piece
    return start * 64 + end


def legal_moves(board: chess.Board) -> dict[int, chess.Move]:
    """Every legal move of the side to move, keyed by its action."""
    return {encode_move(move, board.turn): move for move in board.legal_moves}


def legal_actions(board: chess.Board) -> np.ndarray:
    """int64 [k]: the legal actions, ascending."""
    return np.array(sorted(legal_moves(board)), np.int64)


def action_to_move(board: chess.Board, action: int) -> chess.Move:
    """The legal move of `action` in `board`; IllegalMoveError (one line) otherwise."""
    move = legal_moves(board).get(int(action))
    if move is None:
        raise IllegalMoveError(f"illegal chess action {action} in position {board.fen()}")
    return move


def perft(board: chess.Board, depth: int) -> int:
    """Leaf count of the legal-move tree to `depth`, walked through the action encoding."""
    if depth == 0:
        return 1
    actions = legal_actions(board)
    if depth == 1:
        return len(actions)
    total = 0
    for action in actions:
        board.push(action_to_move(board, int(action)))
        total += perft(board, depth - 1)
        board.pop()
    return total


def parse_fen(fen: str, chess960: bool = False) -> chess.Board:
    """A board from a FEN (Shredder/X-FEN castling letters allowed in Chess960); one-line errors."""
    try:
        board = chess.Board(fen, chess960=chess960)
    except ValueError as err:
        raise BoardInputError(f"malformed FEN {fen!r}: {err}") from None
    if not board.is_valid():
        raise BoardInputError(f"invalid position in FEN {fen!r}: {board.status()!r}")
    return board


def chess960_board(index: int) -> chess.Board:
    """The Chess960 starting position numbered `index` (0..959, Scharnagl's numbering)."""
    if not isinstance(index, (int, np.integer)) or not 0 <= int(index) <= 959:
        raise BoardInputError(f"unknown Chess960 starting position {index!r}: indices are 0..959")
    return chess.Board.from_chess960_pos(int(index))


class ChessEnv(TwoPlayerBoardEnv):
    """Chess or Chess960 (see the module docstring for the conventions).

    `fen` fixes the start position; in Chess960 without a FEN, `start_index` (0..959)
    fixes it or, when None, each reset draws one uniformly from its seed.
    """

    metadata = {"name": "chess_v0", "render_modes": ["ansi"], "is_parallelizable": False}
    num_actions = NUM_ACTIONS
    observation_shape = (8, 8, 18)

    def __init__(
        self, fen: str | None = None, chess960: bool = False, start_index: int | None = None, **kwargs
    ):
        self.chess960 = bool(chess960)
        if start_index is not None and not self.chess960:
            raise BoardInputError("start_index picks a Chess960 position; use chess960=True (or a FEN)")
        if start_index is not None and fen is not None:
            raise BoardInputError("give a FEN or a Chess960 start_index, not both")
        self.start_fen = parse_fen(fen, self.chess960).fen() if fen is not None else None
        if start_index is not None:
            chess960_board(start_index)  # validates the index
        self.start_index = start_index
        if self.chess960:
            self.metadata = {**self.metadata, "name": "chess960_v0"}
        super().__init__(**kwargs)

    def _new_game(self, rng: np.random.Generator) -> None:
        if self.start_fen is not None:
            self.board = parse_fen(self.start_fen, self.chess960)
        elif self.chess960:
            index = self.start_index if self.start_index is not None else int(rng.integers(960))
            self.board = chess960_board(index)
        else:
            self.board = chess.Board()
        self._first = 0 if self.board.turn == chess.WHITE else 1
        self._moves = legal_moves(self.board)

    def _to_play(self) -> int:
        return 0 if self.board.turn == chess.WHITE else 1

    def _legal_mask(self) -> np.ndarray:
        mask = np.zeros(NUM_ACTIONS, bool)
        mask[list(self._moves)] = True
        return mask

    def _play(self, action: int) -> None:
        self.board.push(self._moves[action])
        self._moves = legal_moves(self.board)

    def _outcome(self) -> int | None:
        result = self.board.outcome(claim_draw=False)
        if result is None:
            return None
        return DRAW if result.winner is None else (0 if result.winner == chess.WHITE else 1)

    def _observe(self, player: int) -> np.ndarray:
        board, colour = self.board, chess.WHITE if player == 0 else chess.BLACK
        planes = np.zeros((8, 8, 18), np.int8)
        for square, piece in board.piece_map().items():
            sq = square if colour == chess.WHITE else chess.square_mirror(square)
            plane = piece.piece_type - 1 + (0 if piece.color == colour else 6)
            planes[chess.square_rank(sq), chess.square_file(sq), plane] = 1
        rights = (
            board.has_kingside_castling_rights(colour),
            board.has_queenside_castling_rights(colour),
            board.has_kingside_castling_rights(not colour),
            board.has_queenside_castling_rights(not colour),
        )
        planes[:, :, 12:16] = np.array(rights, np.int8)
        if board.ep_square is not None:
            sq = board.ep_square if colour == chess.WHITE else chess.square_mirror(board.ep_square)
            planes[chess.square_rank(sq), chess.square_file(sq), 16] = 1
        planes[:, :, 17] = player
        return planes

    def _describe(self, action: int) -> str:
        return f"{action} (no legal move has this action in {self.board.fen()})"

    # -- FEN and UCI in and out --------------------------------------------------------
    def fen(self) -> str:
        return self.board.fen()

    def uci_to_action(self, uci: str) -> int:
        """The action of a UCI move (e2e4, e7e8q; castling as e1g1, or king-onto-rook in Chess960)."""
        try:
            move = chess.Move.from_uci(uci)
        except ValueError:
            raise BoardInputError(f"malformed UCI move {uci!r}") from None
        if not self.board.is_legal(move):
            raise IllegalMoveError(f"illegal move {uci} in position {self.board.fen()}")
        # python-chess accepts either castling notation; keep the one this game's actions use.
        move = self.board.parse_uci(self.board.uci(move))
        return encode_move(move, self.board.turn)

    def action_to_uci(self, action: int) -> str:
        return self.board.uci(action_to_move(self.board, action))

    def play_uci(self, *moves: str) -> None:
        for uci in moves:
            self.step(self.uci_to_action(uci))

    def __str__(self) -> str:
        return str(self.board)
