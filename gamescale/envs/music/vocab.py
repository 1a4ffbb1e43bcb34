"""The music vocabulary: note-event tokens and prompt (condition) tokens, and text prompts.

Time is counted in ticks of 1/12 quarter note (`TICKS_PER_QUARTER`), so sixteenths (3),
eighth triplets (4) and every dotted value down to the dotted sixteenth are whole ticks.

Token ids (`VOCAB_SIZE` = 295):

| ids        | token            | meaning                                                     |
| ---------- | ---------------- | ----------------------------------------------------------- |
| 0          | PAD              | padding after EOS                                           |
| 1          | BOS              | start of the music (after the prompt)                       |
| 2          | EOS              | end of the piece                                            |
| 3          | BAR              | a new bar; the next token is its length (a DUR token)       |
| 4          | REST             | silence in the current voice; the next token is its length |
| 5          | NULL             | "no condition": fills a prompt slot that is unknown/dropped |
| 6..9       | VOICE_0..VOICE_3 | the following events belong to this voice, from bar start   |
| 10..137    | PITCH_0..127     | a MIDI pitch; several in a row sound together (a chord)     |
| 138..233   | DUR_1..DUR_96    | k ticks (k/12 quarter notes); DURs in a row add up          |
| 234..294   | prompt tokens    | one block per attribute (`ATTRIBUTES`), values below        |

A piece is `BOS (BAR DUR (VOICE (REST DUR+ | PITCH+ DUR+)*)*)* EOS`: in each bar every
voice's events are written in time order from the bar's start, each event ending where
the next begins (a REST fills a gap). A conditioned sequence is the prompt (one token per
attribute, in `ATTRIBUTES` order, NULL where unknown) followed by the piece.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TICKS_PER_QUARTER = 12
MAX_VOICES = 4
MAX_DURATION = 96  # ticks: 8 quarter notes

PAD, BOS, EOS, BAR, REST, NULL = 0, 1, 2, 3, 4, 5
VOICE_BASE = 6
PITCH_BASE = VOICE_BASE + MAX_VOICES
DUR_BASE = PITCH_BASE + 128  # DUR_k is DUR_BASE + k - 1
PROMPT_BASE = DUR_BASE + MAX_DURATION

COLLECTIONS = ("bach", "essenFolksong", "ryansMammoth", "oneills1850")
TONICS = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")
MODES = ("major", "minor")
METERS = ("2/4", "3/4", "4/4", "2/2", "3/2", "4/2", "3/8", "6/8", "9/8", "12/8", "other")
OCTAVES = tuple(range(9))  # scientific octave numbers 0..8 (C4 = MIDI 60)
VOICE_COUNTS = tuple(range(1, MAX_VOICES + 1))

# attribute -> the text of each value, in token order
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "collection": COLLECTIONS,
    "key": tuple(f"{t} {m}" for m in MODES for t in TONICS),
    "meter": METERS,
    "lowest": tuple(str(o) for o in OCTAVES),
    "highest": tuple(str(o) for o in OCTAVES),
    "voices": tuple(str(v) for v in VOICE_COUNTS),
}
ATTRIBUTES = tuple(ATTRIBUTE_VALUES)
PROMPT_LENGTH = len(ATTRIBUTES)

_ATTRIBUTE_BASE: dict[str, int] = {}
_next = PROMPT_BASE
for _name, _values in ATTRIBUTE_VALUES.items():
    _ATTRIBUTE_BASE[_name] = _next
    _next += len(_values)
VOCAB_SIZE = _next

# enharmonic spellings accepted in text prompts (music21 writes flats with "-")
_TONIC_ALIASES = {"Db": "C#", "D-": "C#", "D#": "E-", "Eb": "E-", "Gb": "F#", "G-": "F#", "G#": "A-", "Ab": "A-",
                  "A#": "B-", "Bb": "B-", "Cb": "B", "C-": "B", "E#": "F", "Fb": "E", "F-": "E", "B#": "C"}
_MINOR_MODES = {"minor", "dorian", "phrygian", "aeolian", "locrian"}
_NOTE_NAME = re.compile(r"^([A-Ga-g])([#b\-]?)(-?\d)$")


class PromptError(ValueError):
    """A text prompt with an unknown attribute or value."""


def voice_token(voice: int) -> int:
    return VOICE_BASE + voice


def pitch_token(pitch: int) -> int:
    return PITCH_BASE + pitch


def duration_token(ticks: int) -> int:
    return DUR_BASE + ticks - 1


def attribute_token(attribute: str, value: str) -> int:
    """The token of `value` for `attribute` (both as in `ATTRIBUTE_VALUES`)."""
    if attribute not in ATTRIBUTE_VALUES:
        raise PromptError(f"unknown prompt attribute {attribute!r}; known: {', '.join(ATTRIBUTES)}")
    values = ATTRIBUTE_VALUES[attribute]
    if value not in values:
        raise PromptError(f"prompt attribute {attribute} has no value {value!r}; known: {', '.join(values)}")
    return _ATTRIBUTE_BASE[attribute] + values.index(value)


def canonical_key(tonic: str, mode: str) -> str:
    """`"Bb", "dorian"` -> `"B- minor"`: tonic spelled as in TONICS, church modes folded to
    major / minor by their third."""
    tonic = tonic[0].upper() + tonic[1:]
    tonic = _TONIC_ALIASES.get(tonic, tonic)
    if tonic not in TONICS:
        raise PromptError(f"unknown key tonic {tonic!r}")
    return f"{tonic} {'minor' if mode.lower() in _MINOR_MODES else 'major'}"


def canonical_meter(meter: str) -> str:
    return meter if meter in METERS else "other"


def octave_of(pitch: int) -> str:
    """The scientific octave of a MIDI pitch, clipped to OCTAVES, as text."""
    return str(min(max(pitch // 12 - 1, OCTAVES[0]), OCTAVES[-1]))


def _parse_value(attribute: str, value: str) -> str:
    if attribute == "key":
        parts = value.split()
        if len(parts) != 2:
            raise PromptError(f"prompt attribute key needs 'TONIC MODE' (e.g. 'F# minor'), got {value!r}")
        return canonical_key(parts[0], parts[1])
    if attribute in ("lowest", "highest"):
        match = _NOTE_NAME.match(value)
        if match:  # a note name such as C3: its octave
            return str(min(max(int(match.group(3)), OCTAVES[0]), OCTAVES[-1]))
    return value


@dataclass(frozen=True)
class Prompt:
    """Attribute values (canonical text, None where unknown), in `ATTRIBUTES` order."""

    values: tuple[str | None, ...]

    def tokens(self) -> list[int]:
        """`PROMPT_LENGTH` condition tokens, NULL for an unknown attribute."""
        return [NULL if v is None else attribute_token(a, v) for a, v in zip(ATTRIBUTES, self.values, strict=True)]

    def text(self) -> str:
        return "; ".join(f"{a}: {v}" for a, v in zip(ATTRIBUTES, self.values, strict=True) if v is not None)

    def as_dict(self) -> dict[str, str | None]:
        return dict(zip(ATTRIBUTES, self.values, strict=True))


def make_prompt(**values: str | None) -> Prompt:
    """A prompt from attribute keywords (unknown names or values raise `PromptError`)."""
    for name in values:
        if name not in ATTRIBUTE_VALUES:
            raise PromptError(f"unknown prompt attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
    prompt = Prompt(tuple(values.get(a) for a in ATTRIBUTES))
    prompt.tokens()  # validates every value
    return prompt


def parse_prompt(text: str) -> Prompt:
    """`"collection: bach; key: F# minor; meter: 4/4; lowest: C2; highest: 5; voices: 4"` ->
    a `Prompt`. Attributes may be left out (NULL); an unknown one is a `PromptError`."""
    values: dict[str, str] = {}
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        if ":" not in item:
            raise PromptError(f"prompt item {item!r} is not 'attribute: value'")
        name, value = (s.strip() for s in item.split(":", 1))
        if name not in ATTRIBUTE_VALUES:
            raise PromptError(f"unknown prompt attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
        if name in values:
            raise PromptError(f"prompt attribute {name} is given twice")
        values[name] = _parse_value(name, value)
    return make_prompt(**values)


def describe_token(token: int) -> str:
    """A readable name of one token id (for debugging and docs)."""
    specials = {PAD: "PAD", BOS: "BOS", EOS: "EOS", BAR: "BAR", REST: "REST", NULL: "NULL"}
    if token in specials:
        return specials[token]
    if VOICE_BASE <= token < PITCH_BASE:
        return f"VOICE_{token - VOICE_BASE}"
    if PITCH_BASE <= token < DUR_BASE:
        return f"PITCH_{token - PITCH_BASE}"
    if DUR_BASE <= token < PROMPT_BASE:
        return f"DUR_{token - DUR_BASE + 1}"
    for name, values in ATTRIBUTE_VALUES.items():
        base = _ATTRIBUTE_BASE[name]
        if base <= token < base + len(values):
            return f"{name}={values[token - base]}"
    raise ValueError(f"token {token} is outside the vocabulary [0, {VOCAB_SIZE})")
