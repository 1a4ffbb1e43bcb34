"""Shapes of the lab's transformers as typed configs (no torch: configs validate without it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TransformerConfig(BaseModel):
    """Shape of a `CausalTransformer`; `autocast_bf16` runs it in bf16 autocast on CUDA."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vocab_size: int = Field(ge=2)
    context_length: int = Field(ge=2)
    d_model: int = Field(ge=1)
    n_layers: int = Field(ge=1)
    n_heads: int = Field(ge=1)
    d_ff: int = Field(ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    positions: Literal["learned", "rotary"] = "learned"
    autocast_bf16: bool = False

    @model_validator(mode="after")
    def _check_heads(self) -> TransformerConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.positions == "rotary" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"rotary positions need an even head size, got {self.d_model // self.n_heads}")
        return self

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


class ModelShape(BaseModel):
    """Shape of a lab model (vocabulary and context come from the lab)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    d_model: int = Field(64, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    d_ff: int = Field(128, ge=8)
    positions: Literal["learned", "rotary"] = "learned"

