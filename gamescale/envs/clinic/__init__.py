"""Clinical agent environment (AgentClinic-style OSCE dialogues): cases, the `clinic` AEC
env with doctor, patient, measurement and moderator, and deterministic baselines."""

from __future__ import annotations

from gamescale.envs.clinic.agents import (
    Episode,
    MeasurementAgent,
    RetrievalDoctor,
    RetrievalPatient,
    RulesModerator,
    play,
)
from gamescale.envs.clinic.cases import Case, CaseFormatError, load_cases
from gamescale.envs.clinic.clinic import ClinicEnv, parse_doctor
from gamescale.envs.clinic.config import ClinicConfig
from gamescale.envs.clinic.moderator import judge
from gamescale.envs.registry import register_env


def build_clinic(config: ClinicConfig) -> ClinicEnv:
    return ClinicEnv(
        load_cases(config.case_set),
        max_turns=config.max_turns,
        doctor_bias=config.doctor_bias,
        patient_bias=config.patient_bias,
        max_chars=config.max_chars,
        case_set=config.case_set,
    )


register_env("clinic", ClinicConfig, build_clinic, "AgentClinic-style diagnostic dialogue (PettingZoo AEC, text)")

__all__ = [
    "Case",
    "CaseFormatError",
    "ClinicConfig",
    "ClinicEnv",
    "Episode",
    "MeasurementAgent",
    "RetrievalDoctor",
    "RetrievalPatient",
    "RulesModerator",
    "build_clinic",
    "judge",
    "load_cases",
    "parse_doctor",
    "play",
]
