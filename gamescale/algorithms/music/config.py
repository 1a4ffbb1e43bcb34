"""Typed config of the conditional music model and its guided / distilled sampling (no torch)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gamescale.algorithms.lm.shapes import ModelShape


class ConditionalMusicConfig(BaseModel):
    """A prompt-conditioned transformer over the music vocabulary, trained with condition
    dropout so that one model gives both the conditional and the unconditional logits CFG
    needs; `guidance_scale` s mixes them as uncond + s (cond - uncond) (1: conditional,
    0: unconditional, > 1: guided)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelShape = ModelShape(d_model=64, n_layers=2, n_heads=4, d_ff=128)
    context_length: int = Field(256, ge=16, description="prompt + BOS + music tokens seen in training")
    condition_dropout: float = Field(0.2, ge=0.0, le=1.0, description="share of sequences trained with NULL prompts")
    attribute_dropout: float = Field(
        0.1, ge=0.0, le=1.0, description="share of single prompt attributes replaced by NULL (partial prompts)"
    )
    guidance_scale: float = Field(3.0, strict=True, allow_inf_nan=False, description="CFG scale (a number)")
    temperature: float = Field(1.0, gt=0.0)
    top_k: int | None = Field(None, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(16, ge=1)
    seed: int = 0
