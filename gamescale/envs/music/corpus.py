"""The tokenised corpus: pieces of music21's bundled collections with their prompts, parsed
once and cached as Parquet, split into train / held-out by a hash of the piece id.

Cache: one file per collection and reading setting,
`CACHE_DIR/<collection>-n<max_pieces>-t<TOKENS_VERSION>-m21_<music21 version>.parquet`,
written atomically, with one row per piece (columns in `COLUMNS`) and, in the schema
metadata, how many pieces were skipped and why (more than four parts, notes the grammar
cannot write, ...). A changed tokeniser bumps `TOKENS_VERSION`, so old caches are not read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gamescale.envs.music import vocab as V
from gamescale.envs.music.config import MusicCorpusConfig
from gamescale.envs.music.tokens import TokenizeError, tokenize

TOKENS_VERSION = 1
COLUMNS = ("piece_id", "source", "number", "split", "prompt", *V.ATTRIBUTES, "n_notes", "n_bars",
           "tokens")
_EXTENSIONS = {"bach": ("mxl",), "essenFolksong": ("abc",), "ryansMammoth": ("abc",), "oneills1850": ("abc",)}


def default_cache_dir() -> Path:
    root = os.environ.get("GAMESCALE_CACHE")
    return Path(root) / "music" if root else Path.home() / ".cache" / "gamescale" / "music"


def heldout_mask(piece_ids: list[str], fraction: float) -> np.ndarray:
    """`[N]` bool: a piece is held out when the hash of its id falls in the first `fraction`
    of [0, 1) (stable as collections grow); at least one piece when N >= 2 and fraction > 0."""
    if not piece_ids:
        return np.zeros(0, dtype=bool)
    u = np.array([int(hashlib.sha1(p.encode()).hexdigest()[:12], 16) / 16**12 for p in piece_ids])
    mask = u < fraction
    if fraction > 0 and len(piece_ids) >= 2 and not mask.any():
        mask[int(np.argmin(u))] = True
    return mask


def _pieces(collection: str):
    """(source, number, score) of every piece of a collection in corpus order (an opus file
    such as an Essen collection yields each of its songs)."""
    from music21 import corpus, stream

    for path in corpus.getComposer(collection, fileExtensions=_EXTENSIONS[collection]):
        source = f"{collection}/{Path(path).name}"
        parsed = corpus.parse(path)
        if isinstance(parsed, stream.Opus):
            for i, score in enumerate(parsed.scores):
                yield source, int(score.metadata.number or i + 1) if score.metadata else i + 1, score
        else:
            yield source, -1, parsed


def _piece_row(piece_id: str, source: str, number: int, score, collection: str | None) -> dict:
    """One corpus row (every column but `split`) of a parsed score."""
    from gamescale.envs.music.score import score_prompt, score_to_notes

    notes = score_to_notes(score, piece_id)
    tokens = tokenize(notes)
    prompt = score_prompt(score, notes, collection)
    return {"piece_id": piece_id, "source": source, "number": number, "prompt": prompt.text(),
            **prompt.as_dict(), "n_notes": len(notes), "n_bars": int(notes.bars.size),
            "tokens": np.asarray(tokens, dtype=np.int16)}


def read_score_files(paths: tuple[str, ...]) -> pa.Table:
    """The user's own score files (any format music21 reads), one row each with a prompt
    whose collection is NULL. These are asked for by name, so a file that cannot be read or
    written in the vocabulary is an error (one line naming it), never skipped."""
    from gamescale.envs.music.score import ScoreError, load_score

    rows: dict[str, list] = {c: [] for c in COLUMNS if c != "split"}
    for path in paths:
        try:
            row = _piece_row(f"file/{Path(path).name}", str(path), -1, load_score(path), None)
        except (TokenizeError, V.PromptError) as exc:
            raise ScoreError(f"score {path}: {exc}") from None
        for name, value in row.items():
            rows[name].append(value)
    return pa.table({name: rows[name] for name in rows})


def read_collection(collection: str, max_pieces: int) -> pa.Table:
    """Parse and tokenise up to `max_pieces` pieces of `collection` (slow; see the cache)."""
    from gamescale.envs.music.score import ScoreError

    rows: dict[str, list] = {c: [] for c in COLUMNS if c != "split"}
    skipped: Counter[str] = Counter()
    for source, number, score in _pieces(collection):
        if len(rows["piece_id"]) >= max_pieces:
            break
        piece_id = source if number < 0 else f"{source}#{number}"
        try:
            row = _piece_row(piece_id, source, number, score, collection)
        except (ScoreError, TokenizeError, V.PromptError) as exc:
            skipped[str(exc).split(":")[-1].strip()[:60]] += 1
            continue
        for name, value in row.items():
            rows[name].append(value)
    table = pa.table({name: rows[name] for name in rows})
    meta = {"collection": collection, "max_pieces": str(max_pieces), "skipped": json.dumps(dict(skipped))}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}})


def cache_path(cache_dir: Path, collection: str, max_pieces: int) -> Path:
    import music21

    return Path(cache_dir) / f"{collection}-n{max_pieces}-t{TOKENS_VERSION}-m21_{music21.__version__}.parquet"


def _write_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_collection(collection: str, max_pieces: int, cache_dir: Path | None = None) -> pa.Table:
    """The tokenised pieces of one collection, read from the cache or parsed and cached."""
    path = cache_path(cache_dir or default_cache_dir(), collection, max_pieces)
    if path.exists():
        return pq.read_table(path)
    table = read_collection(collection, max_pieces)
    _write_atomic(table, path)
    return table


@dataclass(frozen=True)
class MusicCorpus:
    """Tokenised pieces with their prompts: `table` has the columns of `COLUMNS`."""

    table: pa.Table
    skipped: dict[str, dict[str, int]]

    def split(self, name: str) -> MusicCorpus:
        if name not in ("train", "heldout"):
            raise ValueError(f"unknown split {name!r}; use train or heldout")
        mask = pa.array(np.asarray(self.table.column("split").to_pylist()) == name)
        return MusicCorpus(self.table.filter(mask), self.skipped)

    def __len__(self) -> int:
        return self.table.num_rows

    def token_lists(self) -> list[np.ndarray]:
        """Each piece's tokens (BOS ... EOS) as int64."""
        return [np.asarray(t, dtype=np.int64) for t in self.table.column("tokens").to_pylist()]

    def prompts(self) -> list[V.Prompt]:
        columns = [self.table.column(a).to_pylist() for a in V.ATTRIBUTES]
        return [V.Prompt(tuple(values)) for values in zip(*columns, strict=True)]


def build_music_corpus(config: MusicCorpusConfig) -> MusicCorpus:
    """The corpus of `config` (the `music_corpus` environment)."""
    cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    own = read_score_files(config.scores) if config.scores else None  # first: a bad file fails fast
    tables, skipped = [], {}
    for collection in config.collections:
        table = cached_collection(collection, config.max_pieces, cache_dir)
        skipped[collection] = json.loads((table.schema.metadata or {}).get(b"skipped", b"{}"))
        tables.append(table.replace_schema_metadata(None))
    if own is not None:
        tables.append(own.cast(tables[0].schema))
    table = pa.concat_tables(tables)
    split = np.where(heldout_mask(table.column("piece_id").to_pylist(), config.heldout_fraction), "heldout", "train")
    table = table.append_column("split", pa.array(split.tolist(), pa.string())).select(list(COLUMNS))
    if table.num_rows == 0:
        raise ValueError(f"no usable pieces in {', '.join(config.collections)} (skipped: {skipped})")
    return MusicCorpus(table, skipped)
