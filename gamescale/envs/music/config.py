"""Typed config of the music corpus (no music21, no torch)."""

from __future__ import annotations

from pydantic import Field, field_validator

from gamescale.envs.music.vocab import COLLECTIONS
from gamescale.envs.registry import EnvConfig


class MusicCorpusConfig(EnvConfig):
    """Which bundled music21 collections to read, how many pieces of each, the held-out
    share and where the parsed tokens are cached (parsing is slow: ~0.2 s a chorale, ~80 s
    an Essen file of ~300 songs on this machine)."""

    name: str = "music_corpus"
    collections: tuple[str, ...] = Field(("bach",), min_length=1)
    max_pieces: int = Field(64, ge=1, description="pieces read per collection (in corpus order)")
    heldout_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share held out, chosen by a hash of the piece id")
    scores: tuple[str, ...] = Field((), description="the user's own score files added to the corpus (not cached)")
    cache_dir: str | None = Field(None, description="default: $GAMESCALE_CACHE/music or ~/.cache/gamescale/music")

    @field_validator("collections")
    @classmethod
    def _known(cls, collections: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in collections if c not in COLLECTIONS]
        if unknown:
            raise ValueError(f"unknown music collection(s) {unknown}; known: {', '.join(COLLECTIONS)}")
        if len(set(collections)) != len(collections):
            raise ValueError(f"music collections repeat: {list(collections)}")
        return collections
