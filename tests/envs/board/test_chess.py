"""Chess and Chess960 through our action encoding: published perft counts, FEN/UCI in and
out, the 960 starting positions, and one-line errors on bad input."""

from __future__ import annotations

import chess
import numpy as np
import pytest

from gamescale import make_env
from gamescale.envs.board import IllegalMoveError
from gamescale.envs.board.chess_env import NUM_ACTIONS, BoardInputError, parse_fen, perft

KIWIPETE = "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1"
# (FEN, chess960, published perft counts from depth 1); the chessprogramming wiki's
# positions 3-5 cover en passant, promotions and under-promotions, and the three Chess960
# positions are the first of the standard Chess960 perft suite (counts agree with Stockfish).
PERFT = [
    (chess.STARTING_FEN, False, [20, 400, 8902]),
    (KIWIPETE, False, [48, 2039]),
    ("8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1", False, [14, 191, 2812]),
    ("r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1", False, [6, 264, 9467]),
    ("rnbq1k1r/pp1Pbppp/2p5/8/2B5/8/PPP1NnPP/RNBQK2R w KQ - 1 8", False, [44, 1486]),
    ("bqnb1rkr/pp3ppp/3ppn2/2p5/5P2/P2P4/NPP1P1PP/BQ1BNRKR w HFhf - 2 9", True, [21, 528]),
    ("2nnrbkr/p1qppppp/8/1ppb4/6PP/3PP3/PPP2P2/BQNNRBKR w HEhe - 1 9", True, [21, 807]),
    ("b1q1rrkb/pppppppp/3nn3/8/P7/1PPP4/4PPPP/BQNNRKRB w GE - 1 9", True, [20, 479]),
]


@pytest.mark.parametrize(("fen", "chess960", "counts"), PERFT, ids=[f"{i}" for i in range(len(PERFT))])
def test_perft_through_the_action_encoding(fen, chess960, counts):
    env = make_env("chess960" if chess960 else "chess", fen=fen)
    env.reset()
    assert env.observe(env.agent_selection)["action_mask"].sum() == counts[0]
    for depth, expected in enumerate(counts, start=1):
        assert perft(env.board, depth) == expected, f"depth {depth}"


def test_castling_actions_in_both_games():
    opening = ["e2e4", "e7e5", "g1f3", "b8c6", "f1c4", "g8f6"]
    standard = make_env("chess")
    standard.reset()
    standard.play_uci(*opening)
    frc = make_env("chess960", start_index=518)  # 518 is the standard array
    frc.reset()
    assert frc.fen() == chess.STARTING_FEN
    frc.play_uci(*opening)
    assert standard.action_to_uci(standard.uci_to_action("e1g1")) == "e1g1"
    assert frc.action_to_uci(frc.uci_to_action("e1h1")) == "e1h1"  # king onto its rook
    with pytest.raises(IllegalMoveError, match="illegal move e1g1"):
        frc.uci_to_action("e1g1")  # in Chess960 this is a plain (illegal) king step
    standard.step(standard.uci_to_action("e1g1"))
    frc.step(frc.uci_to_action("e1h1"))
    assert standard.board.board_fen() == frc.board.board_fen() == "r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQ1RK1"


def test_uci_round_trip_and_black_perspective_on_random_games():
    rng = np.random.default_rng(0)
    for name in ("chess", "chess960"):
        env = make_env(name)
        env.reset(seed=3)
        for _ in range(60):
            if env.winner() is not None:
                break
            actions = env.legal_actions()
            assert all(env.uci_to_action(env.action_to_uci(a)) == a for a in actions)
            assert actions.max() < NUM_ACTIONS
            env.step(int(rng.choice(actions)))
    env = make_env("chess")
    env.reset()
    env.play_uci("e2e4")
    black = env.observe("player_1")["observation"]
    # Seen by black, white's e4 pawn sits on the mirrored square e5 (rank index 4), plane 6.
    assert black[4, 4, 6] == 1 and black[:, :, 17].all() and black[1, :, 0].sum() == 8  # its own pawns on its second rank


def test_chess960_positions_by_index():
    boards = [chess.Board.from_chess960_pos(i) for i in range(960)]
    assert len({b.board_fen() for b in boards}) == 960
    env = make_env("chess960", start_index=0)
    env.reset()
    assert env.board.board_fen() == "bbqnnrkr/pppppppp/8/8/8/8/PPPPPPPP/BBQNNRKR"
    drawn = set()
    env = make_env("chess960")
    for seed in range(20):
        env.reset(seed=seed)
        drawn.add(env.board.board_fen())
    assert len(drawn) > 15


@pytest.mark.parametrize("index", [960, -1, 100000])
def test_unknown_chess960_index(index):
    with pytest.raises(ValueError, match="0..959") as err:
        make_env("chess960", start_index=index)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fen", ["", "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP w KQkq - 0 1", "8/8/8/8/8/8/8/8 w - - 0 1"])
def test_malformed_or_invalid_fen(fen):
    with pytest.raises(BoardInputError, match="FEN") as err:
        parse_fen(fen)
    assert "\n" not in str(err.value)


def test_illegal_chess_moves():
    env = make_env("chess")
    env.reset()
    with pytest.raises(IllegalMoveError, match="illegal move e2e5") as err:
        env.uci_to_action("e2e5")
    assert "\n" not in str(err.value)
    with pytest.raises(BoardInputError, match="malformed UCI"):
        env.uci_to_action("e2")
    with pytest.raises(IllegalMoveError, match="no legal move has this action"):
        env.step(0)


def test_checkmate_rewards_and_truncation():
    env = make_env("chess")
    env.reset()
    env.play_uci("f2f3", "e7e5", "g2g4", "d8h4")  # fool's mate
    assert env.winner() == 1 and env.rewards == {"player_0": -1.0, "player_1": 1.0}
    env = make_env("chess", max_plies=4)
    env.reset()
    env.play_uci("g1f3", "g8f6", "f3g1", "f6g8")
    assert all(env.truncations.values()) and env.winner() is None
