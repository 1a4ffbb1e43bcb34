"""Typed config of the BOND task environment (no torch)."""

from __future__ import annotations

from pydantic import Field, model_validator

from gamescale.envs.registry import EnvConfig


class BondTaskConfig(EnvConfig):
    """The reference policy, prompts and true scoring rule of a BOND experiment."""

    name: str = "bond_task"
    vocab_size: int = Field(16, ge=2)
    prompt_length: int = Field(2, ge=1)
    completion_length: int = Field(8, ge=1)
    d_model: int = Field(32, ge=1)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    d_ff: int = Field(64, ge=1)
    reference_seed: int = 0
    reference_logit_std: float = Field(2.0, gt=0.0, description="spread of the reference policy's logits")
    scoring_seed: int = 0
    token_weight: float = Field(1.0, description="weight of the mean per-token score v[y_t]")
    ascending_weight: float = Field(1.0, description="weight of the fraction of ascending steps y_{t+1} = y_t + 1")

    @model_validator(mode="after")
    def _check_heads(self) -> BondTaskConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        return self

