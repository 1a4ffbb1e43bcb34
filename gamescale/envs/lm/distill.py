"""The sampler side of the teacher-hacking lab (2502.02671): an oracle language model (the
known ground truth), a teacher distilled from it, and the prompt distributions. The shard
function the samplers run (`generate_shard`) lives with the algorithm in
`gamescale.algorithms.lm.distill`.

The oracle is a randomly initialised `CausalTransformer` whose weights are scaled up
(`oracle_init_scale`) and whose output head is sharpened (`oracle_sharpness`), so its
next-token distributions depend on the whole context and have moderate entropy. The
teacher is a `teacher` transformer trained from the oracle with the per-token forward KL
on fresh oracle samples for `teacher_steps` Adam steps: a good but imperfect copy.
Both are built deterministically from the config (seeds included) and cached per process,
so every sampler actor and the driver hold identical frozen models.

Prompts are `prompt_length` tokens drawn i.i.d. uniformly from the vocabulary; training
prompts and the `num_eval_prompts` held-out prompts come from disjoint seed streams.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import torch
from torch import nn

from gamescale.algorithms.lm.losses import forward_kl
from gamescale.algorithms.lm.model import CausalTransformer, TransformerConfig, build_model, torch_threads
from gamescale.algorithms.lm.sampling import sample
from gamescale.envs.lm.config import DistillLabConfig  # noqa: F401


def make_oracle(cfg: DistillLabConfig) -> CausalTransformer:
    """The ground-truth model: a scaled random transformer with a sharpened head."""
    model = build_model(cfg.transformer(cfg.oracle), cfg.oracle_seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("weight") and param.dim() == 2:
                param.mul_(cfg.oracle_init_scale)
        model.head.weight.mul_(cfg.oracle_sharpness)
    return model.eval().requires_grad_(False)


def uniform_prompts(num: int, length: int, vocab_size: int, generator: torch.Generator) -> torch.Tensor:
    """`[num, length]` prompts with i.i.d. uniform tokens."""
    return torch.randint(0, vocab_size, (num, length), generator=generator)


def train_teacher(cfg: DistillLabConfig, oracle: CausalTransformer) -> CausalTransformer:
    """The teacher: `cfg.teacher` trained on the oracle's per-token distributions along
    fresh oracle samples (forward KL), `teacher_steps` Adam steps, seeded by `teacher_seed`."""
    teacher = build_model(cfg.transformer(cfg.teacher), cfg.teacher_seed)
    optimizer = torch.optim.Adam(teacher.parameters(), lr=cfg.teacher_learning_rate)
    generator = torch.Generator().manual_seed(cfg.teacher_seed + 7919)
    P = cfg.prompt_length
    for _ in range(cfg.teacher_steps):
        prompts = uniform_prompts(cfg.teacher_batch_size, P, cfg.vocab_size, generator)
        tokens = sample(oracle, prompts, cfg.completion_length, generator=generator).tokens
        with torch.no_grad():
            target = oracle(tokens[:, :-1])[:, P - 1 :]
        loss = forward_kl(target, teacher(tokens[:, :-1])[:, P - 1 :])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return teacher.eval().requires_grad_(False)


class LogitSum(nn.Module):
    """A frozen model whose logits are `base(tokens) + scale * perturbation(tokens)`;
    speaks the `CausalTransformer` interface (`config`, `init_cache`, `forward(tokens, cache)`)."""

    def __init__(self, base: CausalTransformer, perturbation: CausalTransformer, scale: float):
        super().__init__()
        self.base, self.perturbation, self.scale = base, perturbation, float(scale)
        self.config = base.config

    def init_cache(self, batch: int, device: torch.device | str | None = None) -> tuple:
        return (self.base.init_cache(batch, device), self.perturbation.init_cache(batch, device))

    def forward(self, tokens: torch.Tensor, cache: tuple | None = None) -> torch.Tensor:
        if cache is None:
            return self.base(tokens) + self.scale * self.perturbation(tokens)
        return self.base(tokens, cache[0]) + self.scale * self.perturbation(tokens, cache[1])


def make_teacher(cfg: DistillLabConfig, oracle: CausalTransformer) -> nn.Module:
    """The trained teacher, plus `teacher_noise` times a random high-frequency network of
    the context (standardised logits) when asked: an imperfect teacher whose errors a
    student can only copy by memorising them."""
    teacher = train_teacher(cfg, oracle)
    if cfg.teacher_noise == 0:
        return teacher
    noise = build_model(cfg.transformer(cfg.oracle), cfg.teacher_seed + 1)
    with torch.no_grad():
        for name, param in noise.named_parameters():
            if name.endswith("weight") and param.dim() == 2:
                param.mul_(cfg.teacher_noise_init_scale)
        probe = torch.randint(0, cfg.vocab_size, (256, cfg.context_length), generator=torch.Generator().manual_seed(3))
        noise.head.weight.div_(noise(probe).std().clamp_min(1e-6))
    return LogitSum(teacher, noise.eval().requires_grad_(False), cfg.teacher_noise).eval().requires_grad_(False)


class DistillLab:
    """Frozen oracle and teacher, the held-out prompts, and the lab's shapes."""

    def __init__(self, config: DistillLabConfig):
        self.config = config
        with torch.random.fork_rng(devices=[]), torch_threads(1):
            self.oracle = make_oracle(config)
            self.teacher = make_teacher(config, self.oracle)
        self.eval_prompts = uniform_prompts(
            config.num_eval_prompts,
            config.prompt_length,
            config.vocab_size,
            torch.Generator().manual_seed(config.eval_seed),
        )
        self._students: dict[str, CausalTransformer] = {}

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def model(self, role: str) -> CausalTransformer:
        if role == "oracle":
            return self.oracle
        if role == "teacher":
            return self.teacher
        raise ValueError(f"unknown model role {role!r}; use 'oracle' or 'teacher'")

    def student(self, transformer: dict[str, Any], weights: dict[str, np.ndarray]) -> CausalTransformer:
        """A student model of the given config holding `weights` (one cached instance per config)."""
        key = json.dumps(transformer, sort_keys=True)
        if key not in self._students:
            cfg = TransformerConfig.model_validate(transformer)
            if cfg.vocab_size != self.vocab_size:
                raise ValueError(f"student vocabulary {cfg.vocab_size} does not match the teacher's {self.vocab_size}")
            self._students[key] = build_model(cfg, 0).eval().requires_grad_(False)
        module = self._students[key]
        module.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in weights.items()})
        return module


@functools.lru_cache(maxsize=4)
def _cached_lab(config_json: str) -> DistillLab:
    return DistillLab(DistillLabConfig.model_validate_json(config_json))


def build_distill_lab(config: DistillLabConfig) -> DistillLab:
    """The lab for `config`, built once per process (teacher training is deterministic)."""
    return _cached_lab(config.model_dump_json())
