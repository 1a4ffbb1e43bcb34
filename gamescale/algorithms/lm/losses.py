"""Token-level divergences between two next-token distributions over the full vocabulary.

Conventions: `p_logits` is the target (teacher, oracle) and `q_logits` the model being
trained (student), both `[..., V]`; `mask` `[...]` (bool or 0/1) marks the positions
that count. Every loss returns the mean over masked positions of a per-position
divergence computed exactly over the vocabulary (no sampling of tokens):

- `forward_kl`:  KL(p || q) = sum_v p_v (log p_v - log q_v)   (mode covering)
- `reverse_kl`:  KL(q || p) = sum_v q_v (log q_v - log p_v)   (mode seeking)
- `generalized_jsd(beta)`: beta KL(p || m) + (1 - beta) KL(q || m), m = beta p + (1 - beta) q
  (the generalised Jensen-Shannon divergence of GKD; beta = 0.5 is the usual JSD).

Gradients flow into both arguments; detach the target yourself when it is frozen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    if mask.shape != values.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match positions {tuple(values.shape)}")
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def _check(p_logits: torch.Tensor, q_logits: torch.Tensor) -> None:
    if p_logits.shape != q_logits.shape:
        raise ValueError(
            f"teacher and student logits differ in shape: {tuple(p_logits.shape)} vs {tuple(q_logits.shape)} "
            "(mismatched vocabularies?)"
        )


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-position KL(p || q) from log-probabilities, with 0 log 0 = 0."""
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)


def forward_kl_per_token(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """`[...]` KL(p || q) at each position."""
    _check(p_logits, q_logits)
    return _kl(F.log_softmax(p_logits.float(), -1), F.log_softmax(q_logits.float(), -1))


def reverse_kl_per_token(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """`[...]` KL(q || p) at each position."""
    _check(p_logits, q_logits)
    return _kl(F.log_softmax(q_logits.float(), -1), F.log_softmax(p_logits.float(), -1))


def jsd_per_token(p_logits: torch.Tensor, q_logits: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """`[...]` generalised JSD with weight `beta` on p, at each position (0 < beta < 1)."""
    _check(p_logits, q_logits)
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must lie strictly between 0 and 1, got {beta}")
    log_p = F.log_softmax(p_logits.float(), -1)
    log_q = F.log_softmax(q_logits.float(), -1)
    log_m = torch.logsumexp(torch.stack((log_p + math.log(beta), log_q + math.log(1.0 - beta))), dim=0)
    return beta * _kl(log_p, log_m) + (1.0 - beta) * _kl(log_q, log_m)


def forward_kl(p_logits: torch.Tensor, q_logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over masked positions of KL(p || q)."""
    return _masked_mean(forward_kl_per_token(p_logits, q_logits), mask)


def reverse_kl(p_logits: torch.Tensor, q_logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over masked positions of KL(q || p)."""
    return _masked_mean(reverse_kl_per_token(p_logits, q_logits), mask)


def generalized_jsd(
    p_logits: torch.Tensor, q_logits: torch.Tensor, mask: torch.Tensor | None = None, beta: float = 0.5
) -> torch.Tensor:
    """Mean over masked positions of the generalised JSD with weight `beta` on p."""
    return _masked_mean(jsd_per_token(p_logits, q_logits, beta), mask)


def divergence_per_token(kind: str, p_logits: torch.Tensor, q_logits: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """`[...]` the divergence named `kind` (one of DIVERGENCES) at each position."""
    if kind == "forward_kl":
        return forward_kl_per_token(p_logits, q_logits)
    if kind == "reverse_kl":
        return reverse_kl_per_token(p_logits, q_logits)
    if kind == "jsd":
        return jsd_per_token(p_logits, q_logits, beta)
    raise ValueError(f"unknown divergence {kind!r}; use one of {', '.join(DIVERGENCES)}")


def divergence(
    kind: str, p_logits: torch.Tensor, q_logits: torch.Tensor, mask: torch.Tensor | None = None, beta: float = 0.5
) -> torch.Tensor:
    """Mean over masked positions of the divergence named `kind`."""
    return _masked_mean(divergence_per_token(kind, p_logits, q_logits, beta), mask)


@torch.no_grad()
def sequence_distance(
    reference, model, tokens: torch.Tensor, prompt_length: int, kind: str = "forward_kl", beta: float = 0.5
) -> torch.Tensor:
    """`[B]` exact per-token distance between two models on fixed sequences.

    At every completion position of `tokens` `[B, L]` (the next-token predictions made
    after positions prompt_length - 1 .. L - 2) the divergence between `reference`
    (p) and `model` (q) is computed over the full vocabulary; the result is its mean
    over the completion, per sequence. With `tokens` sampled from `reference` and kind
    "forward_kl" this is the sequence-level KL(reference || model) per token, estimated
    with the exact inner expectation. This is the metric behind `proxy_distance`
    (reference = teacher) and `golden_distance` (reference = oracle).
    """
    if not 1 <= prompt_length < tokens.shape[1]:
        raise ValueError(f"prompt_length must lie in [1, {tokens.shape[1] - 1}], got {prompt_length}")
    p_logits = reference(tokens[:, :-1])[:, prompt_length - 1 :]
    q_logits = model(tokens[:, :-1])[:, prompt_length - 1 :]
    return divergence_per_token(kind, p_logits, q_logits, beta).mean(dim=1)
