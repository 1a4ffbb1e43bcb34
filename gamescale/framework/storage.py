"""Run-directory storage: atomic files, metric Parquet parts and checkpoints.

Layout of a run directory::

    config.yaml                      fully resolved config
    metrics/part-AAAAAAAA-BBBBBBBB.parquet   rows for iterations A..B, each part atomic
    checkpoints/ckpt-NNNNNNNN/       state.npz, learner-*.pt, meta.json (with checksums)
    plots/*.png
    summary.json                     written last: final metrics row and status

Every file is written to a hidden temporary name and renamed into place, so a killed
process never leaves a half-written part or checkpoint under a real name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gamescale.framework.errors import CheckpointError

METRICS_DIR = "metrics"
CHECKPOINTS_DIR = "checkpoints"
PLOTS_DIR = "plots"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.yaml"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside `path`; rename it onto `path` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# ---------------------------------------------------------------- metrics


def _part_name(first: int, last: int) -> str:
    return f"part-{first:08d}-{last:08d}.parquet"


def _part_range(path: Path) -> tuple[int, int]:
    _, first, last = path.stem.split("-")
    return int(first), int(last)


def metric_parts(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / METRICS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("part-*.parquet"))


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of {iteration, time_s, metric...} as a table: iteration int64, the rest float64."""
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        dtype = pa.int64() if name == "iteration" else pa.float64()
        columns[name] = pa.array(
            [None if v is None else (int(v) if name == "iteration" else float(v)) for v in values], dtype
        )
    return pa.table(columns)


class MetricsWriter:
    """Buffers one row per iteration and writes them as atomic Parquet parts."""

    def __init__(self, run_dir: Path):
        self.folder = Path(run_dir) / METRICS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        if not self.rows:
            return
        first, last = int(self.rows[0]["iteration"]), int(self.rows[-1]["iteration"])
        with atomic_path(self.folder / _part_name(first, last)) as tmp:
            pq.write_table(rows_to_table(self.rows), tmp)
        self.rows = []

    def discard_from(self, next_iteration: int) -> None:
        """Drop rows at or after `next_iteration` (parts written after the last checkpoint)."""
        for part in metric_parts(self.folder.parent):
            first, last = _part_range(part)
            if first >= next_iteration:
                part.unlink()
            elif last >= next_iteration:
                table = pq.read_table(part)
                kept = table.filter(pc.less(table["iteration"], next_iteration))
                with atomic_path(self.folder / _part_name(first, next_iteration - 1)) as tmp:
                    pq.write_table(kept, tmp)
                part.unlink()


def read_metrics(run_dir: Path) -> pa.Table:
    """All metric rows of a run, sorted by iteration (an empty table if none yet)."""
    parts = metric_parts(Path(run_dir))
    if not parts:
        return pa.table({"iteration": pa.array([], pa.int64()), "time_s": pa.array([], pa.float64())})
    # Parts are read one by one with ParquetFile: pq.read_table and pyarrow.dataset import
    # pandas, half a second of start-up for a small run.
    table = pa.concat_tables([pq.ParquetFile(p).read() for p in parts], promote_options="permissive")
    return table.sort_by("iteration")


# ---------------------------------------------------------------- checkpoints


def flatten_state(state: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of arrays and scalars -> {"a/b": ndarray}; scalars become 0-d arrays."""
    flat: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if "/" in key:
            raise ValueError(f"state key {key!r} may not contain '/'")
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if not value:
                flat[f"{name}/"] = np.zeros(0)
            flat.update(flatten_state(value, f"{name}/"))
        else:
            array = np.asarray(value)
            if array.dtype == object:
                raise ValueError(f"state entry {name!r} is not an array or scalar ({type(value).__name__})")
            flat[name] = array
    return flat


def unflatten_state(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, array in flat.items():
        parts = name.split("/")
        node = state
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if parts[-1] == "":
            continue
        node[parts[-1]] = array.item() if array.ndim == 0 else array
    return state


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("ckpt-*") if p.is_dir())


def save_checkpoint(
    run_dir: Path,
    next_iteration: int,
    state: dict[str, Any],
    learner_blobs: dict[str, bytes],
    meta: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint `ckpt-<next_iteration>` atomically and keep the newest `keep`."""
    folder = Path(run_dir) / CHECKPOINTS_DIR
    final = folder / f"ckpt-{next_iteration:08d}"
    tmp = folder / f".tmp-ckpt-{next_iteration:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.savez(tmp / "state.npz", **flatten_state(state))
    for name, blob in learner_blobs.items():
        (tmp / f"learner-{name}.pt").write_bytes(blob)
    files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
    (tmp / "meta.json").write_text(
        json.dumps({"format": 1, "next_iteration": next_iteration, "files": files, **meta}, indent=2)
    )
    for path in tmp.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any]]:
    """(state, learner blobs, meta) of one checkpoint; `CheckpointError` if it is damaged."""
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        files = meta["files"]
        int(meta["next_iteration"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: unreadable meta.json ({exc.__class__.__name__})"
        ) from None
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {path} is incomplete: {name} is missing")
        if _sha256(file) != expected:
            raise CheckpointError(f"checkpoint {path} is corrupt: {name} does not match its checksum")
    try:
        with np.load(path / "state.npz", allow_pickle=False) as archive:
            flat = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt: state.npz unreadable ({exc})") from None
    blobs = {p.name[len("learner-") : -len(".pt")]: p.read_bytes() for p in path.glob("learner-*.pt")}
    return unflatten_state(flat), blobs, meta


def latest_checkpoint(run_dir: Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None
