"""Notes <-> tokens (pure numpy; the grammar and ids are documented in `vocab`).

A piece is a `Notes` value: parallel int arrays, one entry per sounding note (a chord is
several notes with the same voice, onset and duration), times in ticks of 1/12 quarter,
plus the bar lengths. `tokenize` writes it as tokens; `detokenize` reads them back, either
strictly (real pieces: any deviation from the grammar is an error) or leniently
(generations: tokens that do not fit the grammar are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gamescale.envs.music import vocab as V


class TokenizeError(ValueError):
    """Notes that the vocabulary cannot write, or tokens that break the grammar."""


@dataclass(frozen=True)
class Notes:
    """A piece as notes.

    voice, onset, duration, pitch: `[N]` int64 each; onset and duration in ticks
        (1/12 quarter) from the start of the first bar, voice in [0, MAX_VOICES),
        pitch a MIDI number in [0, 128). Sorted by (voice, onset, pitch).
    bars: `[M]` int64 bar lengths in ticks (bar i starts at sum(bars[:i])).
    """

    voice: np.ndarray
    onset: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    bars: np.ndarray

    @staticmethod
    def build(voice, onset, duration, pitch, bars) -> Notes:
        """Sorted `Notes` from any sequences (copies them as int64)."""
        arrays = [np.asarray(a, dtype=np.int64).reshape(-1) for a in (voice, onset, duration, pitch)]
        if len({a.size for a in arrays}) != 1:
            raise TokenizeError("voice, onset, duration and pitch must have the same length")
        order = np.lexsort((arrays[3], arrays[1], arrays[0]))
        return Notes(*(a[order] for a in arrays), bars=np.asarray(bars, dtype=np.int64).reshape(-1))

    def __len__(self) -> int:
        return int(self.pitch.size)

    def as_set(self) -> set[tuple[int, int, int, int]]:
        """{(voice, onset, duration, pitch)}: what "the same notes" means in tests."""
        return set(zip(*(a.tolist() for a in (self.voice, self.onset, self.duration, self.pitch)), strict=True))

    @property
    def bar_starts(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.bars)[:-1])).astype(np.int64)


def _duration_tokens(ticks: int, what: str) -> list[int]:
    """One DUR token, or several (summed) for a note longer than MAX_DURATION ticks."""
    if ticks < 1:
        raise TokenizeError(f"{what} has no length")
    full, last = divmod(ticks, V.MAX_DURATION)
    return [V.duration_token(V.MAX_DURATION)] * full + ([V.duration_token(last)] if last else [])


def _bar_token(ticks: int) -> int:
    if not 1 <= ticks <= V.MAX_DURATION:
        raise TokenizeError(f"a bar of {ticks} ticks is outside 1..{V.MAX_DURATION} (1/12 quarter each)")
    return V.duration_token(ticks)


def _rest_tokens(ticks: int) -> list[int]:
    """A gap of any length as REST DUR pieces of at most MAX_DURATION ticks."""
    out: list[int] = []
    while ticks > 0:
        step = min(ticks, V.MAX_DURATION)
        out += [V.REST, V.duration_token(step)]
        ticks -= step
    return out


def tokenize(notes: Notes) -> list[int]:
    """`BOS ... EOS` for `notes` (raises `TokenizeError` for what the grammar cannot write:
    a bar longer than 8 quarters, overlapping notes in a voice, a chord whose
    notes differ in length, a note before the first bar or after the last)."""
    if len(notes) == 0:
        raise TokenizeError("a piece without notes cannot be tokenised")
    if notes.bars.size == 0 or (notes.bars <= 0).any():
        raise TokenizeError("bar lengths must be positive")
    if notes.voice.min() < 0 or notes.voice.max() >= V.MAX_VOICES:
        raise TokenizeError(f"voices must lie in [0, {V.MAX_VOICES}), got {int(notes.voice.max())}")
    if notes.pitch.min() < 0 or notes.pitch.max() > 127:
        raise TokenizeError("pitches must be MIDI numbers in [0, 128)")
    starts = notes.bar_starts
    end = int(starts[-1] + notes.bars[-1])
    if notes.onset.min() < 0 or notes.onset.max() >= end:
        raise TokenizeError(f"notes must start within the bars [0, {end}) ticks")
    bar_of = np.searchsorted(starts, notes.onset, side="right") - 1
    tokens = [V.BOS]
    for bar, (start, length) in enumerate(zip(starts.tolist(), notes.bars.tolist(), strict=True)):
        tokens += [V.BAR, _bar_token(length)]
        in_bar = bar_of == bar
        for voice in np.unique(notes.voice[in_bar]).tolist():
            chosen = in_bar & (notes.voice == voice)
            onsets, durations, pitches = notes.onset[chosen], notes.duration[chosen], notes.pitch[chosen]
            tokens.append(V.voice_token(voice))
            cursor = start
            for onset in np.unique(onsets).tolist():
                here = onsets == onset
                lengths = np.unique(durations[here])
                if lengths.size != 1:
                    raise TokenizeError(f"voice {voice}: notes at tick {onset} differ in length (not one chord)")
                if onset < cursor:
                    raise TokenizeError(f"voice {voice}: a note at tick {onset} overlaps the one before")
                tokens += _rest_tokens(onset - cursor)
                tokens += [V.pitch_token(p) for p in np.unique(pitches[here]).tolist()]
                tokens += _duration_tokens(int(lengths[0]), f"voice {voice}: a note at tick {onset}")
                cursor = onset + int(lengths[0])
    tokens.append(V.EOS)
    return tokens


def detokenize(tokens, strict: bool = True) -> Notes:
    """The notes written by `tokens` (a piece from BOS, or anything after a prompt).

    strict: every token must fit the grammar (else `TokenizeError`). Lenient mode reads a
    model's generation: tokens that do not fit are skipped, reading stops at EOS/PAD, an
    unfinished chord at the end is dropped, and same-pitch overlaps in a voice are cut
    (`_without_unisons`).
    """
    seq = [int(t) for t in np.asarray(tokens).reshape(-1)]
    voice_l: list[int] = []
    onset_l: list[int] = []
    dur_l: list[int] = []
    pitch_l: list[int] = []
    bars: list[int] = []
    bar_start, voice, cursor = 0, None, 0
    pending: list[int] = []  # pitches waiting for their duration
    pending_rest = expect_bar_length = False
    last_event: list[int] | None = None  # note indices a further DUR would lengthen ([] for a rest)

    def bad(i: int, why: str) -> None:
        if strict:
            raise TokenizeError(f"token {i} ({V.describe_token(seq[i]) if 0 <= seq[i] < V.VOCAB_SIZE else seq[i]}): {why}")

    started = False
    for i, tok in enumerate(seq):
        if not 0 <= tok < V.VOCAB_SIZE:
            bad(i, "outside the vocabulary")
            continue
        if tok == V.BOS:
            if started:
                bad(i, "BOS inside a piece")
            started = True
            continue
        if strict and not started:
            bad(i, "the piece must start with BOS")
        if tok in (V.EOS, V.PAD):
            if pending or pending_rest or expect_bar_length:
                bad(i, "the piece ends inside an event")
            break
        is_duration = V.DUR_BASE <= tok < V.PROMPT_BASE
        if expect_bar_length and not is_duration:
            bad(i, "BAR must be followed by its length")
            continue
        if tok == V.BAR:
            if pending or pending_rest:
                bad(i, "a bar starts inside an event")
                pending, pending_rest = [], False
            if bars:
                bar_start += bars[-1]
            expect_bar_length, voice, last_event = True, None, None
        elif is_duration:
            ticks = tok - V.DUR_BASE + 1
            if expect_bar_length:
                bars.append(ticks)
                expect_bar_length = False
            elif pending:
                last_event = list(range(len(pitch_l), len(pitch_l) + len(pending)))
                for p in pending:
                    voice_l.append(voice)
                    onset_l.append(cursor)
                    dur_l.append(ticks)
                    pitch_l.append(p)
                cursor += ticks
                pending = []
            elif pending_rest:
                cursor += ticks
                pending_rest, last_event = False, []
            elif last_event is not None:  # DUR after DUR: the event goes on
                for index in last_event:
                    dur_l[index] += ticks
                cursor += ticks
            else:
                bad(i, "a duration without a note, rest or bar")
        elif V.VOICE_BASE <= tok < V.PITCH_BASE:
            if not bars or pending or pending_rest:
                bad(i, "a voice outside a bar or inside an event")
                continue
            voice, cursor, last_event = tok - V.VOICE_BASE, bar_start, None
        elif tok == V.REST:
            if voice is None or pending or pending_rest:
                bad(i, "a rest outside a voice or inside an event")
                continue
            pending_rest, last_event = True, None
        elif V.PITCH_BASE <= tok < V.DUR_BASE:
            if voice is None or pending_rest:
                bad(i, "a pitch outside a voice or after a rest")
                continue
            pitch = tok - V.PITCH_BASE
            if pitch in pending:
                bad(i, "a pitch repeated within a chord")
                continue
            pending.append(pitch)
            last_event = None
        else:  # NULL or a prompt token inside the music
            bad(i, "not a music token")
    else:
        if strict and seq:
            raise TokenizeError("the piece has no EOS")
    notes = Notes.build(voice_l, onset_l, dur_l, pitch_l, bars)
    return notes if strict else _without_unisons(notes)


def _without_unisons(notes: Notes) -> Notes:
    """A voice cannot sound one pitch twice at once (MIDI could not tell which note ends):
    an earlier note is cut where the same pitch starts again in its voice, and a note
    that starts together with a same-pitch one is dropped (the later-written survives)."""
    order = np.lexsort((notes.onset, notes.pitch, notes.voice))
    v, o, d, p = (a[order].copy() for a in (notes.voice, notes.onset, notes.duration, notes.pitch))
    same_next = np.zeros(v.size, dtype=bool)
    same_next[:-1] = (v[1:] == v[:-1]) & (p[1:] == p[:-1])
    next_onset = np.append(o[1:], 0)
    cut = same_next & (o + d > next_onset)
    d[cut] = next_onset[cut] - o[cut]
    keep = d > 0
    return Notes.build(v[keep], o[keep], d[keep], p[keep], notes.bars)
