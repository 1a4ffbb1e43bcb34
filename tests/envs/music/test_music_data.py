"""The music data: tokens round-trip real pieces, MIDI parses back, the cache and split,
and bad input (corrupt or empty score, unknown prompt attribute) is one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.envs.music import vocab as V  # noqa: E402
from gamescale.envs.music.score import (  # noqa: E402
    ScoreError,
    load_score,
    read_midi_notes,
    score_prompt,
    score_to_notes,
    write_midi,
)
from gamescale.envs.music.tokens import Notes, TokenizeError, detokenize, tokenize  # noqa: E402

PIECES = ("bach/bwv66.6", "ryansMammoth/7thRegimentReel")


@pytest.fixture(scope="module")
def real_pieces():
    return {name: load_score(name) for name in PIECES}


@pytest.mark.parametrize("name", PIECES)
def test_tokenise_detokenise_real_piece_gives_the_same_notes(real_pieces, name):
    score = real_pieces[name]
    notes = score_to_notes(score, name)
    # an independent count from music21: every pitched note/chord member with a duration
    expected = sum(len(n.pitches) for part in score.parts for n in part.stripTies(inPlace=False).flatten().notes
                   if n.duration.quarterLength > 0)
    assert len(notes) == expected
    tokens = tokenize(notes)
    assert tokens[0] == V.BOS and tokens[-1] == V.EOS and max(tokens) < V.PROMPT_BASE
    back = detokenize(tokens)
    assert back.as_set() == notes.as_set() and len(back) == len(notes)
    np.testing.assert_array_equal(back.bars, notes.bars)
    assert tokens.count(V.BAR) == len(score.parts[0].getElementsByClass("Measure"))


def test_bach_chorale_prompt_from_its_metadata(real_pieces):
    score = real_pieces["bach/bwv66.6"]
    prompt = score_prompt(score, score_to_notes(score), "bach")
    assert prompt.as_dict() == {"collection": "bach", "key": "F# minor", "meter": "4/4", "lowest": "2",
                                "highest": "5", "voices": "4"}
    assert V.parse_prompt(prompt.text()) == prompt
    assert all(V.PROMPT_BASE <= t < V.VOCAB_SIZE for t in prompt.tokens())


@pytest.mark.parametrize("name", PIECES)
def test_exported_midi_parses_back_to_the_notes(real_pieces, name, tmp_path):
    notes = score_to_notes(real_pieces[name], name)
    path = write_midi(notes, tmp_path / "piece.mid")
    assert read_midi_notes(path).as_set() == notes.as_set()


def test_generated_tokens_export_to_midi_and_parse_back(tmp_path):
    """Random (ungrammatical) tokens read leniently, as a generation would be, survive MIDI."""
    rng = np.random.default_rng(0)
    body = rng.integers(V.BAR, V.PROMPT_BASE, size=600)
    notes = detokenize(np.concatenate(([V.BOS, V.BAR, V.duration_token(48), V.voice_token(0)], body)), strict=False)
    assert len(notes) > 20
    back = read_midi_notes(write_midi(notes, tmp_path / "gen.mid"))
    # voices without notes leave no MIDI track, so compare voices by rank among those used
    rank = {v: i for i, v in enumerate(np.unique(notes.voice).tolist())}
    relabelled = {(rank[v], o, d, p) for v, o, d, p in notes.as_set()}
    assert back.as_set() == relabelled


def test_long_tied_notes_use_summed_durations():
    notes = Notes.build([0, 0], [0, 200], [200, 4], [60, 62], [96, 96, 96])
    tokens = tokenize(notes)
    long_note = [V.pitch_token(60), V.duration_token(96), V.duration_token(96), V.duration_token(8)]
    assert any(tokens[i : i + 4] == long_note for i in range(len(tokens)))
    assert detokenize(tokens).as_set() == notes.as_set()


def test_strict_detokenise_names_the_bad_token():
    with pytest.raises(TokenizeError, match=r"token 3 \(PITCH_60\): a pitch outside a voice"):
        detokenize([V.BOS, V.BAR, V.duration_token(48), V.pitch_token(60), V.duration_token(12), V.EOS])
    with pytest.raises(TokenizeError, match="BAR must be followed by its length"):
        detokenize([V.BOS, V.BAR, V.pitch_token(60), V.EOS])
    with pytest.raises(TokenizeError, match="overlaps"):
        tokenize(Notes.build([0, 0], [0, 6], [12, 12], [60, 62], [48]))


def test_corrupt_and_empty_scores_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.mxl"
    empty.write_bytes(b"")
    with pytest.raises(ScoreError, match="empty") as info:
        load_score(empty)
    assert "\n" not in str(info.value)
    corrupt = tmp_path / "corrupt.xml"
    corrupt.write_text("<score-partwise><part id='P1'><measure><note><pitch>")
    with pytest.raises(ScoreError, match="cannot read score") as info:
        load_score(corrupt)
    assert "\n" not in str(info.value)
    from music21 import stream

    with pytest.raises(ScoreError, match="has no notes"):
        score_to_notes(stream.Score([stream.Part()]), "silence")


def test_unknown_prompt_attribute_is_one_line_error():
    with pytest.raises(V.PromptError, match="unknown prompt attribute 'tempo'; known: collection, key") as info:
        V.parse_prompt("key: D minor; tempo: fast")
    assert "\n" not in str(info.value)
    with pytest.raises(V.PromptError, match="no value 'klezmer'"):
        V.parse_prompt("collection: klezmer")
    partial = V.parse_prompt("key: Bb dorian; lowest: C3")
    assert partial.as_dict()["key"] == "B- minor" and partial.as_dict()["lowest"] == "3"
    assert partial.tokens().count(V.NULL) == len(V.ATTRIBUTES) - 2


def test_corpus_cache_and_split(tmp_path):
    from gamescale.envs.registry import make_env

    corpus = make_env("music_corpus", collections=["bach"], max_pieces=4, heldout_fraction=0.3, cache_dir=str(tmp_path))
    cached = list(tmp_path.glob("bach-n4-*.parquet"))
    assert len(cached) == 1
    again = make_env("music_corpus", collections=["bach"], max_pieces=4, heldout_fraction=0.3, cache_dir=str(tmp_path))
    assert again.table.equals(corpus.table)
    train, heldout = corpus.split("train"), corpus.split("heldout")
    assert len(train) + len(heldout) == len(corpus) == 4 and len(heldout) >= 1
    assert not set(train.table.column("piece_id").to_pylist()) & set(heldout.table.column("piece_id").to_pylist())
    # bwv1.6 (5 parts) is skipped and counted, not silently dropped
    assert sum(corpus.skipped["bach"].values()) >= 1
    for tokens, prompt in zip(corpus.token_lists(), corpus.prompts(), strict=True):
        assert prompt.as_dict()["collection"] == "bach"
        assert len(detokenize(tokens)) > 0


def test_unknown_collection_is_a_config_error():
    from gamescale.framework.config import validate_config
    from gamescale.framework.errors import ConfigError

    raw = {"name": "x", "env": {"name": "music_corpus", "collections": ["jazz"]}, "algorithm": {"name": "distill"}}
    with pytest.raises(ConfigError, match="unknown music collection"):
        validate_config(raw)
