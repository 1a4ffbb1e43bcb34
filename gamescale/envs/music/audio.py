"""Audio for generated music: MIDI rendered to WAV by FluidSynth with a General MIDI soundfont.

FluidSynth is a system program (Debian: `apt-get install fluidsynth` plus a soundfont
package such as `timgm6mb-soundfont` or `fluid-soundfont-gm`), not a Python dependency,
so audio is optional: `find_synth` says whether it can be made here and, if not, why.
The soundfont is the one given, else `$GAMESCALE_SOUNDFONT`, else the first of the
usual system locations that exists.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

SOUNDFONT_LOCATIONS = (
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)
INSTALL_HINT = "install FluidSynth and a General MIDI soundfont (Debian: apt-get install fluidsynth timgm6mb-soundfont)"


class AudioError(RuntimeError):
    """FluidSynth or a soundfont is missing, or a rendering failed; the message is one line."""


@dataclass(frozen=True)
class Synth:
    """A FluidSynth binary and the soundfont it plays MIDI with."""

    binary: str
    soundfont: str
    sample_rate: int = 22050
    gain: float = 1.0  # FluidSynth's default 0.2 leaves a solo line at a few percent of full scale


def find_synth(soundfont: str | None = None, sample_rate: int = 22050) -> Synth:
    """The synthesizer to render with; raises AudioError naming what is missing."""
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise AudioError(f"fluidsynth is not installed; {INSTALL_HINT}")
    candidates = [soundfont] if soundfont else [os.environ.get("GAMESCALE_SOUNDFONT"), *SOUNDFONT_LOCATIONS]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file():
            return Synth(binary, str(candidate), sample_rate)
    where = soundfont or "$GAMESCALE_SOUNDFONT or " + ", ".join(SOUNDFONT_LOCATIONS[:3])
    raise AudioError(f"no General MIDI soundfont at {where}; {INSTALL_HINT}")


def render_wav(synth: Synth, midi: bytes, timeout_s: float = 120.0) -> bytes:
    """The WAV bytes (16-bit stereo PCM at `synth.sample_rate`) of a MIDI file's bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch) / "in.mid", Path(scratch) / "out.wav"
        source.write_bytes(midi)
        # -n: no MIDI input driver, -i: not interactive, -F: render to file, -q: quiet
        command = [synth.binary, "-niq", "-g", str(synth.gain), "-r", str(synth.sample_rate), "-F", str(target),
                   synth.soundfont, str(source)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise AudioError(f"fluidsynth did not finish rendering within {timeout_s:g} s") from None
        if done.returncode != 0 or not target.is_file() or target.stat().st_size <= 44:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise AudioError(f"fluidsynth failed (exit {done.returncode}): {detail[-1] if detail else 'no output'}")
        return target.read_bytes()


def wav_seconds(data: bytes) -> float:
    """The length in seconds of WAV bytes."""
    with wave.open(io.BytesIO(data)) as handle:
        return handle.getnframes() / handle.getframerate()
