"""The BOND task (2407.14622 at small scale): a frozen reference policy, a prompt
distribution and a stated scoring rule that gives every completion its TRUE reward.

Conventions: token ids lie in `[0, vocab_size)`; a prompt is `prompt_length` ids drawn
uniformly and independently; a completion is `completion_length` ids, so sequences are
`[B, prompt_length + completion_length]` and fit the model's context. The true reward of
a completion `y = (y_1 .. y_T)` (whatever its prompt) is

    r*(y) = token_weight * mean_t v[y_t] + ascending_weight * mean_t 1[y_{t+1} = y_t + 1 mod V],

with `v ~ Normal(0, 1)^V` drawn from `scoring_seed`: a per-token score plus a bonus for
ascending runs, which no model of single tokens can express. Higher is better. The
reference policy is `build_model(model, reference_seed)` with its output head rescaled so
that its logits have standard deviation about `reference_logit_std` (a freshly initialised
transformer is nearly uniform; the rescaling gives it a definite, diverse distribution).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from gamescale.algorithms.lm.model import CausalTransformer, TransformerConfig, build_model
from gamescale.envs.bond.config import BondTaskConfig  # noqa: F401


def model_config(cfg: BondTaskConfig) -> TransformerConfig:
    """The transformer shape shared by the reference policy and every trained policy."""
    return TransformerConfig(
        vocab_size=cfg.vocab_size,
        context_length=cfg.prompt_length + cfg.completion_length,
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        d_ff=cfg.d_ff,
    )


def build_reference(cfg: BondTaskConfig) -> CausalTransformer:
    """The reference policy (deterministic in the config): a seeded transformer whose
    output head is rescaled to logits of standard deviation ~`reference_logit_std`."""
    model = build_model(model_config(cfg), cfg.reference_seed)
    with torch.no_grad():
        head = model.head.weight
        row_norm = head.norm(dim=1).mean()  # LayerNorm output has unit variance per coordinate
        head.mul_(cfg.reference_logit_std / row_norm)
    return model


class BondTask:
    """What samplers host: the frozen reference policy, prompts and the true reward."""

    def __init__(self, config: BondTaskConfig):
        self.config = config
        self.model_config = model_config(config)
        self.token_values = np.random.default_rng(config.scoring_seed).normal(size=config.vocab_size)

    @functools.cached_property
    def reference(self) -> CausalTransformer:
        model = build_reference(self.config)
        model.eval()
        return model

    def sample_prompts(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """`[count, prompt_length]` int64 prompt ids, uniform."""
        return torch.randint(
            0, self.config.vocab_size, (count, self.config.prompt_length), generator=generator, dtype=torch.int64
        )

    def true_reward(self, completions: np.ndarray) -> np.ndarray:
        """r*(y) `[B]` float64 of completions `[B, T]` (the stated scoring rule above)."""
        completions = np.asarray(completions, dtype=np.int64)
        if completions.ndim != 2 or completions.shape[1] != self.config.completion_length:
            raise ValueError(f"completions must be [B, {self.config.completion_length}], got shape {completions.shape}")
        cfg = self.config
        score = self.token_values[completions].mean(axis=1)
        if completions.shape[1] > 1:
            ascending = (completions[:, 1:] == (completions[:, :-1] + 1) % cfg.vocab_size).mean(axis=1)
        else:
            ascending = np.zeros(len(completions))
        return cfg.token_weight * score + cfg.ascending_weight * ascending


def make_bond_task(config: BondTaskConfig) -> BondTask:
    return BondTask(config)
