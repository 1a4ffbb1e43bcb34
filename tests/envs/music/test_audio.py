"""MIDI to WAV with FluidSynth: the audio lasts as long as the notes and sounds their pitch.
Skipped without FluidSynth and a soundfont, except under CI=true (fails)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from gamescale.envs.music.audio import AudioError, find_synth, render_wav, wav_seconds
from gamescale.envs.music.score import write_midi
from gamescale.envs.music.tokens import Notes
from tests.conftest import require_system_program


@pytest.fixture(scope="module")
def synth():
    return require_system_program(find_synth, AudioError)


def _samples(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as handle:
        assert handle.getsampwidth() == 2
        frames = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.float64)
        return frames.reshape(-1, handle.getnchannels()).mean(axis=1), handle.getframerate()


def test_a_held_note_renders_for_its_length_at_its_pitch(synth, tmp_path):
    # A4 (MIDI 69, 440 Hz) held for two 4/4 bars: 8 quarters, 4 s at MIDI's default 120 beats a minute
    notes = Notes.build([0], [0], [96], [69], [48, 48])
    data = render_wav(synth, write_midi(notes, tmp_path / "a4.mid").read_bytes())
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert 4.0 <= wav_seconds(data) <= 8.0  # the note, then the instrument's release
    audio, rate = _samples(data)
    assert rate == synth.sample_rate
    sounding = audio[int(0.1 * rate) : int(1.5 * rate)]  # a piano note decays: its first second or so
    assert np.sqrt(np.mean(sounding**2)) > 100  # not silence (full scale is 32767)
    spectrum = np.abs(np.fft.rfft(sounding * np.hanning(sounding.size)))
    peak_hz = np.fft.rfftfreq(sounding.size, 1.0 / rate)[np.argmax(spectrum)]
    harmonic = peak_hz / 440.0
    assert round(harmonic) in (1, 2, 3, 4) and abs(harmonic - round(harmonic)) < 0.01, peak_hz


def test_missing_soundfont_is_a_one_line_error(tmp_path):
    with pytest.raises(AudioError) as err:
        find_synth(str(tmp_path / "nothing.sf2"))
    assert "\n" not in str(err.value) and ("soundfont" in str(err.value) or "fluidsynth" in str(err.value))


def test_a_file_fluidsynth_cannot_read_is_a_one_line_error(synth):
    with pytest.raises(AudioError) as err:
        render_wav(synth, b"not a midi file")
    assert "\n" not in str(err.value)
