"""Result tables an algorithm returns from `tables(state)`: Arrow tables, plus a few
annotations (a title, fitted parameters, a detected step) stored as JSON in the schema
metadata, so the framework's report can draw a picture from the table alone."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

# One metadata key keeps the annotations apart from pandas' or Arrow's own keys; Parquet
# keeps schema metadata, so a table read back from RUN_DIR/<name>.parquet still has them.
ANNOTATIONS_KEY = b"gamescale.annotations"


def annotate(table: pa.Table, **values: Any) -> pa.Table:
    """`table` with `values` (JSON-serialisable: str, numbers, None, lists, dicts) added to
    its annotations."""
    merged = {**annotations(table), **values}
    metadata = dict(table.schema.metadata or {})
    metadata[ANNOTATIONS_KEY] = json.dumps(merged).encode()
    return table.replace_schema_metadata(metadata)


def annotations(table: pa.Table) -> dict[str, Any]:
    """The annotations of `table` (empty when it has none)."""
    raw = (table.schema.metadata or {}).get(ANNOTATIONS_KEY)
    return json.loads(raw) if raw else {}
