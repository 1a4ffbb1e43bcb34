"""Tests of the static-UE part of `benchmarks/routing.py`: one gamescale child run (the
default solver timed to each gap), and the targets it reports against a peer's row."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "routing.py"
_SPEC = importlib.util.spec_from_file_location("benchmarks_routing", _PATH)
routing = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(routing)


def test_gamescale_child_reaches_both_gaps_on_sioux_falls():
    row = routing.gamescale_static_ue("sioux_falls", workers=1, max_seconds=60)
    for gap in routing.GAPS:
        hit = row["reached"][f"{gap:g}"]
        assert hit["checked_gap"] <= gap * 1.0001 and hit["iterations"] >= 1
    assert row["reached"]["1e-06"]["seconds"] >= row["reached"]["0.0001"]["seconds"]
    assert row["peak_rss_mb"] > 0


def test_targets_compare_one_worker_with_the_peer_and_note_unreached_gaps():
    ours = {
        "peer": "gamescale",
        "solver": "gp",
        "workers": 1,
        "case": "c",
        "peak_rss_mb": 1.0,
        "reached": {"0.0001": {"seconds": 1.0, "tstt": 100.0, "iterations": 3, "checked_gap": 9e-5}},
    }
    theirs = {
        "peer": "aequilibrae 1.7.2",
        "solver": "bfw",
        "peak_rss_mb": 1.0,
        "case": "c",
        "reached": {
            "0.0001": {"seconds": 3.0, "tstt": 100.01, "iterations": 9, "checked_gap": 9e-5},
            "1e-06": {
                "seconds": 9.0,
                "tstt": 100.0,
                "iterations": 10,
                "checked_gap": 2e-6,
                "not_reached": "rgap 2e-06 after max_iter 10",
            },
        },
    }
    out = routing.targets({"static_ue": [ours, theirs], "mean_field": []})
    assert out["c gap 0.0001 <= AequilibraE"][0] and "3.0x" in out["c gap 0.0001 <= AequilibraE"][1]
    assert out["c gap 1e-06 <= AequilibraE"] == (False, "gamescale did not reach it")
    rows = routing.table_rows({"static_ue": [ours, theirs], "simulator": [], "mean_field": [], "targets": out})
    assert any("not reached" in r[3] or "rgap" in r[3] for r in rows)
