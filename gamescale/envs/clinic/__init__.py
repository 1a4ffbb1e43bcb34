"""Clinical agent environment (AgentClinic-style OSCE dialogues): cases, the `clinic` AEC
env with doctor, patient, measurement and moderator, and deterministic baselines."""

from __future__ import annotations

from typing import Any

from gamescale.envs.clinic.config import ClinicConfig
from gamescale.envs.registry import lazy_exports, register_env

# the env (pettingzoo) and the agents are imported when asked for, not with the package
__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["Episode", "MeasurementAgent", "RetrievalDoctor", "RetrievalPatient", "RulesModerator", "play"],
                        f"{__name__}.agents"),
        **dict.fromkeys(["Case", "CaseFormatError", "load_cases"], f"{__name__}.cases"),
        **dict.fromkeys(["ClinicEnv", "parse_doctor"], f"{__name__}.clinic"),
        "judge": f"{__name__}.moderator",
    },
)


def build_clinic(config: ClinicConfig) -> Any:
    from gamescale.envs.clinic.cases import load_cases
    from gamescale.envs.clinic.clinic import ClinicEnv

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
