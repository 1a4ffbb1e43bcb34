"""Two-player board games (issue 10): Connect Four, Hex, Chess and Chess960 as PettingZoo
AEC envs, plus batch-first engines for Connect Four (bitboards) and Hex (arrays and a
batched union-find). python-chess is imported only when a chess env is built."""

from __future__ import annotations

from gamescale.envs.board.config import Chess960Config, ChessConfig, ConnectFourConfig, HexConfig
from gamescale.envs.registry import lazy_exports, register_env

# pettingzoo is imported with the AEC envs, not with the package
__getattr__ = lazy_exports(__name__, dict.fromkeys(["DRAW", "IllegalMoveError", "TwoPlayerBoardEnv"], f"{__name__}.aec"))


def build_connect_four(config: ConnectFourConfig):
    from gamescale.envs.board.connect_four import ConnectFourEnv

    return ConnectFourEnv()


def build_hex(config: HexConfig):
    from gamescale.envs.board.hex import HexEnv

    return HexEnv(size=config.size, swap_rule=config.swap_rule)


def build_chess(config: ChessConfig):
    from gamescale.envs.board.chess_env import ChessEnv

    return ChessEnv(fen=config.fen, max_plies=config.max_plies)


def build_chess960(config: Chess960Config):
    from gamescale.envs.board.chess_env import ChessEnv

    return ChessEnv(fen=config.fen, chess960=True, start_index=config.start_index, max_plies=config.max_plies)


register_env("connect_four", ConnectFourConfig, build_connect_four, "Connect Four 7x6 (PettingZoo AEC)")
register_env("hex", HexConfig, build_hex, "Hex n x n, optional swap rule (PettingZoo AEC)")
register_env("chess", ChessConfig, build_chess, "Chess, python-chess rules, FEN/UCI (PettingZoo AEC)")
register_env("chess960", Chess960Config, build_chess960, "Chess960, 960 start positions by index (PettingZoo AEC)")

__all__ = ["DRAW", "IllegalMoveError", "TwoPlayerBoardEnv"]
