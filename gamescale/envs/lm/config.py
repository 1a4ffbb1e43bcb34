"""Typed config of the teacher-hacking lab environment (no torch)."""

from __future__ import annotations

from pydantic import Field, model_validator

from gamescale.algorithms.lm.shapes import ModelShape, TransformerConfig
from gamescale.envs.registry import EnvConfig


class DistillLabConfig(EnvConfig):
    """The oracle / teacher pair and the prompt distribution of the teacher-hacking lab."""

    name: str = "distill_lab"
    vocab_size: int = Field(32, ge=2)
    prompt_length: int = Field(4, ge=1)
    completion_length: int = Field(8, ge=1)
    oracle: ModelShape = ModelShape()
    oracle_seed: int = 0
    oracle_init_scale: float = Field(5.0, gt=0, description="all oracle weights are multiplied by this")
    oracle_sharpness: float = Field(1.0, gt=0, description="oracle output head multiplied by this")
    teacher: ModelShape = ModelShape(d_model=32, n_layers=1, n_heads=2, d_ff=64)
    teacher_seed: int = 1
    teacher_steps: int = Field(300, ge=0)
    teacher_batch_size: int = Field(64, ge=1)
    teacher_learning_rate: float = Field(3e-3, gt=0)
    teacher_noise: float = Field(
        0.0, ge=0, description="scale of a high-frequency random logit perturbation added to the trained teacher"
    )
    teacher_noise_init_scale: float = Field(10.0, gt=0, description="weight scale of the random perturbation network")
    num_eval_prompts: int = Field(128, ge=1)
    eval_seed: int = 12345

    @model_validator(mode="after")
    def _check_shapes(self) -> DistillLabConfig:
        for role in ("oracle", "teacher"):
            shape = getattr(self, role)
            if shape.d_model % shape.n_heads:
                raise ValueError(f"{role}.d_model {shape.d_model} is not divisible by {role}.n_heads {shape.n_heads}")
        return self

    @property
    def context_length(self) -> int:
        return self.prompt_length + self.completion_length

    def transformer(self, shape: ModelShape) -> TransformerConfig:
        return TransformerConfig(
            vocab_size=self.vocab_size,
            context_length=self.context_length,
            d_model=shape.d_model,
            n_layers=shape.n_layers,
            n_heads=shape.n_heads,
            d_ff=shape.d_ff,
            positions=shape.positions,
        )

