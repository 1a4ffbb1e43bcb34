"""Run-directory storage: state round trips, atomic metric parts, checkpoint damage."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.framework import storage
from gamescale.framework.errors import CheckpointError


def test_state_round_trip_keeps_arrays_scalars_and_nesting():
    state = {"policy": np.arange(12.0).reshape(3, 4), "count": 7, "nested": {"mu": np.ones(3), "tag": "fp"}}
    back = storage.unflatten_state(storage.flatten_state(state))
    np.testing.assert_array_equal(back["policy"], state["policy"])
    assert back["count"] == 7 and isinstance(back["count"], int)
    assert back["nested"]["tag"] == "fp"
    np.testing.assert_array_equal(back["nested"]["mu"], np.ones(3))


def test_flatten_rejects_objects():
    with pytest.raises(ValueError, match="not an array"):
        storage.flatten_state({"bad": object()})


def test_discard_from_keeps_rows_before_the_checkpoint_once(tmp_path):
    writer = storage.MetricsWriter(tmp_path)
    for i in range(5):
        writer.append({"iteration": i, "time_s": 0.1 * i, "x": float(i)})
    writer.flush()
    for i in range(5, 8):
        writer.append({"iteration": i, "time_s": 0.1 * i, "x": float(i)})
    writer.flush()
    writer.discard_from(3)
    assert storage.read_metrics(tmp_path)["iteration"].to_pylist() == [0, 1, 2]
    writer.append({"iteration": 3, "time_s": 0.3, "x": 3.0})
    writer.flush()
    assert storage.read_metrics(tmp_path)["iteration"].to_pylist() == [0, 1, 2, 3]


def test_checkpoint_round_trip_and_keep_newest(tmp_path):
    for step in (2, 4, 6):
        storage.save_checkpoint(tmp_path, step, {"w": np.full(3, step)}, {"q": b"blob"}, {"time_s": 1.0}, keep=2)
    dirs = storage.checkpoint_dirs(tmp_path)
    assert [d.name for d in dirs] == ["ckpt-00000004", "ckpt-00000006"]
    state, blobs, meta = storage.load_checkpoint(dirs[-1])
    np.testing.assert_array_equal(state["w"], np.full(3, 6))
    assert blobs == {"q": b"blob"} and meta["next_iteration"] == 6


def test_damaged_checkpoints_are_named(tmp_path):
    path = storage.save_checkpoint(tmp_path, 1, {"w": np.zeros(100)}, {}, {}, keep=1)
    data = (path / "state.npz").read_bytes()
    (path / "state.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="state.npz does not match its checksum"):
        storage.load_checkpoint(path)
    (path / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable meta.json"):
        storage.load_checkpoint(path)
