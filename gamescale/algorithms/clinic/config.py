"""Typed configs of the clinic evaluation: who plays each role, and how cases are dealt."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gamescale.algorithms.registry import AlgorithmConfig


class PlayerConfig(BaseModel):
    """One role's player. `retrieval` (doctor, patient) and `rules` (moderator) are the
    deterministic baselines; `local` is a causal LM from `model_dir`; `endpoint` an
    OpenAI-compatible chat endpoint at `base_url` (e.g. http://127.0.0.1:8000/v1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["retrieval", "rules", "local", "endpoint"]
    model_dir: str | None = None
    base_url: str | None = None
    model: str = Field("default", description="the model name sent to an endpoint")
    max_new_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.0, ge=0.0, description="0: greedy decoding")
    retries: int = Field(2, ge=0, description="endpoint retries after a failed call")
    timeout_s: float = Field(60.0, gt=0, description="endpoint time-out per call")

    @model_validator(mode="after")
    def _needs(self) -> PlayerConfig:
        if self.kind == "local" and not self.model_dir:
            raise ValueError("a local player needs model_dir")
        if self.kind == "endpoint" and not self.base_url:
            raise ValueError("an endpoint player needs base_url")
        return self


class ClinicEvalConfig(AlgorithmConfig):
    """Evaluate a doctor on every case of the env's case set, `cases_per_iteration` cases an
    iteration, spread over `runtime.shards` seeded shards; the run stops when all are done."""

    name: Literal["clinic_eval"] = "clinic_eval"
    doctor: PlayerConfig = PlayerConfig(kind="retrieval")
    patient: PlayerConfig = PlayerConfig(kind="retrieval")
    moderator: PlayerConfig = PlayerConfig(kind="rules")
    cases_per_iteration: int = Field(27, ge=1)
    max_cases: int | None = Field(None, ge=1, description="evaluate only the first N cases")
    diagnosis_pool: list[str] = Field(
        ["medqa", "extended"], min_length=1, description="case sets whose diagnoses the retrieval doctor ranks"
    )
    threshold: float = Field(0.85, gt=0, le=1, description="the rules moderator's similarity threshold")

    @model_validator(mode="after")
    def _roles(self) -> ClinicEvalConfig:
        if self.doctor.kind == "rules":
            raise ValueError("doctor: kind is retrieval, local or endpoint")
        if self.patient.kind == "rules":
            raise ValueError("patient: kind is retrieval, local or endpoint")
        if self.moderator.kind == "retrieval":
            raise ValueError("moderator: kind is rules, local or endpoint")
        return self
