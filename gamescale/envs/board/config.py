"""Typed configs of the board games (validated by `make_env`)."""

from __future__ import annotations

from pydantic import Field

from gamescale.envs.registry import EnvConfig


class ConnectFourConfig(EnvConfig):
    """Connect Four on the standard 7 x 6 board."""

    name: str = "connect_four"


class HexConfig(EnvConfig):
    """Hex on a size x size board; `swap_rule` lets player_1 take over the first stone."""

    name: str = "hex"
    size: int = Field(11, ge=5, le=13)
    swap_rule: bool = False


class ChessConfig(EnvConfig):
    """Chess from the standard position or from `fen`; `max_plies` truncates long games."""

    name: str = "chess"
    fen: str | None = None
    max_plies: int | None = Field(None, ge=1)


class Chess960Config(EnvConfig):
    """Chess960 from starting position `start_index` (0..959), a random one per reset
    when None, or from a `fen` (Shredder/X-FEN castling rights)."""

    name: str = "chess960"
    start_index: int | None = None
    fen: str | None = None
    max_plies: int | None = Field(None, ge=1)
