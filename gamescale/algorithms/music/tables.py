"""Result tables of the music family (drawn by `framework/pictures.py`):

- `piano_rolls`: one row per note of each named sample — sample, voice, onset, duration
  (ticks of 1/12 quarter), pitch (MIDI); annotation `prompts` {sample: prompt text}.
- `quality_diversity`: one row per model — model, kind (base, cfg, distilled,
  interpolated), beta, mix, quality, diversity, seconds_per_sample.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gamescale.algorithms.tables import annotate
from gamescale.envs.music.tokens import Notes

QUALITY_DIVERSITY_COLUMNS = ("model", "kind", "beta", "mix", "quality", "diversity", "seconds_per_sample")


def piano_roll_table(samples: dict[str, Notes], prompts: dict[str, str] | None = None) -> pa.Table:
    """The notes of each sample, in one table (sample order kept)."""
    parts = {name: [] for name in ("sample", "voice", "onset", "duration", "pitch")}
    for name, notes in samples.items():
        parts["sample"] += [name] * len(notes)
        for column in ("voice", "onset", "duration", "pitch"):
            parts[column].append(getattr(notes, column))
    table = pa.table({
        "sample": pa.array(parts["sample"], pa.string()),
        **{c: pa.array(np.concatenate(parts[c]) if parts[c] else np.zeros(0, np.int64), pa.int64())
           for c in ("voice", "onset", "duration", "pitch")},
    })
    return annotate(table, samples=list(samples), prompts=dict(prompts or {}))


def quality_diversity_table(rows: list[dict]) -> pa.Table:
    """One row per model with the `QUALITY_DIVERSITY_COLUMNS` (beta / mix may be None)."""
    missing = [c for c in QUALITY_DIVERSITY_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"quality_diversity rows lack {missing}")
    return pa.table({c: [r.get(c) for r in rows] for c in QUALITY_DIVERSITY_COLUMNS})
