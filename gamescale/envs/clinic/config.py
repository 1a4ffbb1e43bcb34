"""Typed config of the `clinic` environment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gamescale.envs.registry import EnvConfig


class ClinicConfig(EnvConfig):
    name: Literal["clinic"] = "clinic"
    case_set: str = Field("medqa", description="'medqa', 'extended', or a path to an OSCE JSON-lines file")
    max_turns: int = Field(20, ge=1, description="doctor utterances per case, the diagnosis included")
    doctor_bias: str | None = Field(None, description="a bias prompt for a model-played doctor (clinic.DOCTOR_BIASES)")
    patient_bias: str | None = Field(
        None, description="a bias prompt for a model-played patient (clinic.PATIENT_BIASES)"
    )
    max_chars: int = Field(2000, ge=1, description="longest utterance (the Text action space)")
