"""Symbolic music from music21's bundled corpus (Bach chorales, folk-song collections):
a documented token vocabulary (`vocab`), notes <-> tokens (`tokens`), score reading and
MIDI export (`score`, the only module importing music21) and a Parquet-cached corpus with
text prompts and a train / held-out split (`corpus`). Registers `music_corpus`."""

from __future__ import annotations

from gamescale.envs.music.config import MusicCorpusConfig
from gamescale.envs.registry import register_env

register_env(
    "music_corpus",
    MusicCorpusConfig,
    "gamescale.envs.music.corpus:build_music_corpus",
    "Bach chorales and folk songs from music21's corpus, tokenised, with metadata prompts",
)

__all__ = ["MusicCorpusConfig"]
