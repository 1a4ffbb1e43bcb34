"""The music tables and their pictures: piano rolls of real notes and the quality-diversity
front, written by the framework's drawers and surviving a Parquet round trip."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from gamescale.algorithms.music.tables import piano_roll_table, quality_diversity_table
from gamescale.algorithms.tables import annotations
from gamescale.envs.music.tokens import Notes
from gamescale.framework.pictures import draw_run_tables


def test_piano_rolls_and_quality_diversity_are_drawn_from_the_run_dir(tmp_path):
    scale = Notes.build([0] * 8, np.arange(8) * 12, [12] * 8, [60, 62, 64, 65, 67, 69, 71, 72], [48, 48])
    chord = Notes.build([0, 1, 1], [0, 0, 0], [48, 48, 48], [48, 60, 64], [48])
    rolls = piano_roll_table({"scale": scale, "chord": chord}, {"scale": "key: C major"})
    pq.write_table(rolls, tmp_path / "piano_rolls.parquet")
    back = pq.read_table(tmp_path / "piano_rolls.parquet")
    assert back.num_rows == 11 and annotations(back)["prompts"] == {"scale": "key: C major"}
    rows = [
        {"model": "base", "kind": "base", "beta": None, "mix": None, "quality": 0.2, "diversity": 0.5,
         "seconds_per_sample": 0.01},
        {"model": "cfg", "kind": "cfg", "beta": None, "mix": None, "quality": 0.6, "diversity": 0.2,
         "seconds_per_sample": 0.02},
        *({"model": f"mix {m}", "kind": "interpolated", "beta": None, "mix": m, "quality": 0.6 - 0.2 * m,
           "diversity": 0.2 + 0.3 * m, "seconds_per_sample": 0.01} for m in (0.0, 0.5, 1.0)),
    ]
    pq.write_table(quality_diversity_table(rows), tmp_path / "quality_diversity.parquet")
    written = sorted(p.name for p in draw_run_tables(tmp_path))
    assert written == ["piano_rolls.png", "quality_diversity.png"]
    assert all((tmp_path / "plots" / name).stat().st_size > 5000 for name in written)
