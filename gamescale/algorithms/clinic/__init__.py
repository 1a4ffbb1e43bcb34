"""Evaluation of doctors in the clinic environment: cases dealt over seeded shards,
transcripts and per-case verdicts as tables, accuracy with a 95% interval."""

from __future__ import annotations

from gamescale.algorithms.clinic.config import ClinicEvalConfig, PlayerConfig
from gamescale.algorithms.registry import register_algorithm

register_algorithm(
    "clinic_eval",
    ClinicEvalConfig,
    "gamescale.algorithms.clinic.evaluate:build_evaluation",
    "a doctor (retrieval baseline, local model or endpoint) on every case of a clinic case set",
)

__all__ = ["ClinicEvalConfig", "PlayerConfig"]
