"""music21 scores <-> `Notes`: reading corpus pieces and files, their prompt metadata, and
MIDI export that parses back to the same notes. music21 is imported here only.

Conventions: a score's parts are its voices (at most `MAX_VOICES`); its notes are the
pitched notes and chord members of each part with ties merged (a tied note is one note)
and grace notes (no duration) left out; bars are the first part's measures.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from gamescale.envs.music import vocab as V
from gamescale.envs.music.tokens import Notes


class ScoreError(ValueError):
    """A score that cannot be read or has nothing to learn from."""


def _ticks(quarter_length, what: str) -> int:
    value = Fraction(quarter_length).limit_denominator(10_000) * V.TICKS_PER_QUARTER
    if value.denominator != 1:
        raise ScoreError(f"{what} {float(quarter_length):g} quarters is not on the 1/12-quarter grid")
    return int(value)


def _bar_lengths(part, end: int) -> list[int]:
    """Bar lengths (ticks) from the part's measures; a single 4/4-style grid without them."""
    from music21 import meter, stream

    measures = list(part.getElementsByClass(stream.Measure))
    if measures:
        starts = [_ticks(m.offset, "a bar start") for m in measures]
        starts.append(max(end, starts[-1] + _ticks(measures[-1].duration.quarterLength, "a bar length")))
        lengths = [b - a for a, b in zip(starts[:-1], starts[1:], strict=True)]
        return [length for length in lengths if length > 0]
    signatures = part.recurse().getElementsByClass(meter.TimeSignature)
    bar = _ticks(signatures[0].barDuration.quarterLength, "a bar length") if signatures else 4 * V.TICKS_PER_QUARTER
    return [bar] * max(1, -(-end // bar))


def score_to_notes(score, name: str = "score") -> Notes:
    """The notes and bars of a music21 score (or a single part)."""
    from music21 import stream

    parts = list(score.parts) if isinstance(score, stream.Score) else [score]
    if not parts:
        raise ScoreError(f"{name} has no parts")
    if len(parts) > V.MAX_VOICES:
        raise ScoreError(f"{name} has {len(parts)} parts; at most {V.MAX_VOICES} voices are supported")
    voice, onset, duration, pitch = [], [], [], []
    for v, part in enumerate(parts):
        merged = part.stripTies(inPlace=False) if any(n.tie is not None for n in part.recurse().notes) else part
        for element in merged.flatten().notes:
            length = element.duration.quarterLength
            if length == 0:
                continue  # grace note
            start = _ticks(element.offset, f"{name}: a note at")
            ticks = _ticks(length, f"{name}: a note of")
            for p in element.pitches:
                voice.append(v)
                onset.append(start)
                duration.append(ticks)
                pitch.append(int(p.midi))
    if not pitch:
        raise ScoreError(f"{name} has no notes")
    end = max(o + d for o, d in zip(onset, duration, strict=True))
    return Notes.build(voice, onset, duration, pitch, _bar_lengths(parts[0], end))


def load_score(source: str | Path, number: int | None = None):
    """Parse a score file (or a music21 corpus name such as "bach/bwv66.6"); any failure is
    one `ScoreError` line naming the file."""
    from music21 import converter, corpus

    path = Path(source)
    try:
        if path.exists():
            if path.stat().st_size == 0:
                raise ScoreError(f"score file {path} is empty")
            score = converter.parse(str(path), number=number) if number is not None else converter.parse(str(path))
        else:
            score = corpus.parse(str(source), number=number) if number is not None else corpus.parse(str(source))
    except ScoreError:
        raise
    except Exception as exc:  # music21 raises many kinds (parser errors, IndexError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScoreError(f"cannot read score {source}: {first}") from None
    if score is None:
        raise ScoreError(f"cannot read score {source}: nothing parsed")
    return score


def score_prompt(score, notes: Notes, collection: str) -> V.Prompt:
    """The prompt of a real piece: its collection, stated key (analysed when none is
    written), first meter, lowest and highest octave, and number of voices."""
    from music21 import key, meter

    flat = score.flatten()
    keys = [k for k in flat.getElementsByClass(key.KeySignature) if isinstance(k, key.Key)]
    found = keys[0] if keys else score.analyze("key")
    signatures = flat.getElementsByClass(meter.TimeSignature)
    meter_text = V.canonical_meter(signatures[0].ratioString) if signatures else None
    return V.make_prompt(
        collection=collection,
        key=V.canonical_key(found.tonic.name, found.mode),
        meter=meter_text,
        lowest=V.octave_of(int(notes.pitch.min())),
        highest=V.octave_of(int(notes.pitch.max())),
        voices=str(int(notes.voice.max()) + 1),
    )


def notes_to_score(notes: Notes):
    """A music21 Score: one part per voice 0..max voice (chords where notes share onset and
    length); bars are not written (music21 barlines them in 4/4 on export)."""
    from music21 import chord, note, pitch, stream

    score = stream.Score()
    voices = int(notes.voice.max()) + 1 if len(notes) else 1
    for v in range(voices):
        part = stream.Part(id=f"voice{v}")
        chosen = notes.voice == v
        groups: dict[tuple[int, int], list[int]] = {}
        for o, d, p in zip(notes.onset[chosen].tolist(), notes.duration[chosen].tolist(), notes.pitch[chosen].tolist(),
                           strict=True):
            groups.setdefault((o, d), []).append(p)
        for (o, d), midis in sorted(groups.items()):
            length = Fraction(d, V.TICKS_PER_QUARTER)
            pitches = [pitch.Pitch(midi=m) for m in sorted(midis)]  # a bare int below 12 would be a pitch class
            element = note.Note(pitches[0], quarterLength=length) if len(pitches) == 1 else chord.Chord(
                pitches, quarterLength=length)
            part.insert(Fraction(o, V.TICKS_PER_QUARTER), element)
        score.insert(0, part)
    return score


def write_midi(notes: Notes, path: str | Path) -> Path:
    """Write `notes` as a standard MIDI file (one track per voice), atomically."""
    if len(notes) == 0:
        raise ScoreError("cannot write a MIDI file without notes")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        notes_to_score(notes).write("midi", fp=tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_midi_notes(path: str | Path) -> Notes:
    """The notes of a MIDI file, read from its note-on / note-off events (music21's low-level
    reader: no quantisation, no barlining, so a generation's overlapping notes are not
    re-voiced). Tracks with notes become voices 0, 1, ... in file order; times are rounded
    to the 1/12-quarter grid (exact for files from `write_midi`: 10080 ticks a quarter)."""
    from music21 import midi

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise ScoreError(f"MIDI file {path} is missing or empty")
    try:
        handle = midi.MidiFile()
        handle.open(str(path))
        handle.read()
        handle.close()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScoreError(f"cannot read MIDI file {path}: {first}") from None
    per_quarter = handle.ticksPerQuarterNote
    on, off = midi.ChannelVoiceMessages.NOTE_ON, midi.ChannelVoiceMessages.NOTE_OFF
    voice, onset, duration, pitch = [], [], [], []
    tracks_with_notes = 0
    for track in handle.tracks:
        now, sounding, before = 0, {}, len(pitch)
        for event in track.events:
            if isinstance(event, midi.DeltaTime):
                now += event.time
            elif event.type == on and event.velocity > 0:
                sounding.setdefault((event.channel, event.pitch), []).append(now)
            elif event.type in (on, off) and sounding.get((event.channel, event.pitch)):
                start = sounding[(event.channel, event.pitch)].pop(0)
                voice.append(tracks_with_notes)
                onset.append(round(start * V.TICKS_PER_QUARTER / per_quarter))
                duration.append(round((now - start) * V.TICKS_PER_QUARTER / per_quarter))
                pitch.append(int(event.pitch))
        tracks_with_notes += len(pitch) > before
    if not pitch:
        raise ScoreError(f"MIDI file {path} has no notes")
    end = max(o + d for o, d in zip(onset, duration, strict=True))
    bar = 4 * V.TICKS_PER_QUARTER
    return Notes.build(voice, onset, duration, pitch, [bar] * max(1, -(-end // bar)))


def notes_equal(a: Notes, b: Notes) -> bool:
    return a.as_set() == b.as_set() and len(a) == len(b)


def pitch_range(notes: Notes) -> tuple[int, int]:
    return int(np.min(notes.pitch)), int(np.max(notes.pitch))
