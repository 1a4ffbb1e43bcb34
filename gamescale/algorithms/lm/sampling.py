"""Sampling from a `CausalTransformer` (KV-cached or not) and exact per-token log-probabilities.

Shapes: prompts `[B, P]` (every prompt has the same length `P`), completions `[B, N]`,
so a sampled sequence is `[B, P + N]`. A token is drawn by inverting the CDF of the
(tempered, top-k) distribution at a uniform number from the caller's `torch.Generator`,
so the same generator state gives the same tokens whether or not a KV cache is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gamescale.algorithms.lm.model import CausalTransformer


@dataclass(frozen=True)
class Samples:
    """Sampled sequences.

    tokens: `[B, P + N]` int64, prompt followed by completion.
    logprobs: `[B, N]` float32, log-probability of each sampled token under the model's own
        distribution (temperature 1, no top-k): what `token_logprobs` returns for those tokens.
    sampling_logprobs: `[B, N]` float32, log-probability under the distribution actually
        sampled from (after temperature and top-k); equal to `logprobs` when temperature
        is 1 and top_k is None.
    prompt_length: `P`.
    """

    tokens: torch.Tensor
    logprobs: torch.Tensor
    sampling_logprobs: torch.Tensor
    prompt_length: int

    @property
    def completions(self) -> torch.Tensor:
        """`[B, N]` the sampled tokens without the prompt."""
        return self.tokens[:, self.prompt_length :]


def sampling_distribution(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
    """Log-probabilities `[B, V]` (float64) to sample from at temperature / top-k."""
    logits = logits.double()
    if temperature != 1.0:
        logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return F.log_softmax(logits, dim=-1)


def draw(log_probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row by inverse CDF at a uniform draw: `[B, V]` -> `[B]`."""
    u = torch.rand(log_probs.shape[0], 1, generator=generator, dtype=torch.float64)
    cdf = torch.cumsum(log_probs.exp().cpu(), dim=-1)
    index = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1)
    # a zero-probability token can never be chosen (guards the last bin against round-off)
    index = index.clamp_max(log_probs.shape[-1] - 1)
    return index.to(log_probs.device)


LogitsAt = Callable[[torch.Tensor, int], torch.Tensor]
"""`(tokens [B, P + N], position) -> logits [B, V]` for the token at `position`, given the
tokens before it. `decode` calls it for positions P, P + 1, ... in order, so a KV cache
held by the callable only ever needs the newest token."""


def check_request(model: CausalTransformer, prompts: torch.Tensor, max_new_tokens: int, temperature: float,
                  top_k: int | None) -> None:
    """Raise ValueError (one line naming the problem) for a sampling request the model cannot serve."""
    if prompts.dim() != 2 or prompts.shape[1] < 1:
        raise ValueError(f"prompts must be [batch, length >= 1], got shape {tuple(prompts.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    context = model.config.context_length
    if prompts.shape[1] + max_new_tokens > context:
        raise ValueError(
            f"prompt of {prompts.shape[1]} tokens plus {max_new_tokens} new tokens is longer than the "
            f"context length {context}"
        )
    if int(prompts.min()) < 0 or int(prompts.max()) >= model.config.vocab_size:
        raise ValueError(f"prompt token ids must lie in [0, {model.config.vocab_size})")


@torch.no_grad()
def decode(
    model: CausalTransformer,
    prompts: torch.Tensor,
    max_new_tokens: int,
    logits_at: LogitsAt,
    temperature: float = 1.0,
    top_k: int | None = None,
    *,
    generator: torch.Generator,
) -> Samples:
    """The autoregressive loop shared by every sampler: `logits_at` says what the model
    predicts at each position (plain, cached, classifier-free guided, ...); the draw, the
    buffers and the recorded log-probabilities are the same for all of them."""
    check_request(model, prompts, max_new_tokens, temperature, top_k)
    batch, prompt_length = prompts.shape
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tokens = torch.empty(batch, prompt_length + max_new_tokens, dtype=torch.long, device=device)
    tokens[:, :prompt_length] = prompts.to(device)
    logprobs = torch.empty(batch, max_new_tokens, dtype=torch.float32, device=device)
    sampling_logprobs = torch.empty_like(logprobs)
    try:
        for t in range(max_new_tokens):
            position = prompt_length + t
            logits = logits_at(tokens, position)
            dist = sampling_distribution(logits, temperature, top_k)
            next_token = draw(dist, generator)
            tokens[:, position] = next_token
            sampling_logprobs[:, t] = dist.gather(1, next_token[:, None]).squeeze(1).float()
            logprobs[:, t] = F.log_softmax(logits.float(), dim=-1).gather(1, next_token[:, None]).squeeze(1)
    finally:
        model.train(was_training)
    return Samples(tokens=tokens, logprobs=logprobs, sampling_logprobs=sampling_logprobs, prompt_length=prompt_length)


def model_logits(model: CausalTransformer, prompt_length: int, use_cache: bool = True) -> LogitsAt:
    """`LogitsAt` of the model itself: with a KV cache (the prompt once, then one token a
    step) or without (the whole prefix every step)."""
    cache = None

    def at(tokens: torch.Tensor, position: int) -> torch.Tensor:
        nonlocal cache
        if not use_cache:
            return model(tokens[:, :position])[:, -1]
        if cache is None:
            cache = model.init_cache(tokens.shape[0], tokens.device)
            return model(tokens[:, :prompt_length], cache)[:, -1]
        return model(tokens[:, position - 1 : position], cache)[:, -1]

    return at


def sample(
    model: CausalTransformer,
    prompts: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    *,
    generator: torch.Generator,
    use_cache: bool = True,
) -> Samples:
    """Draw `max_new_tokens` tokens after each prompt.

    `generator` is a CPU `torch.Generator`; it alone decides the draws, so seeded runs
    repeat. Raises ValueError when prompt + completion exceed the model's context.
    """
    logits_at = model_logits(model, prompts.shape[-1] if prompts.dim() == 2 else 0, use_cache)
    return decode(model, prompts, max_new_tokens, logits_at, temperature, top_k, generator=generator)


def token_logprobs(model: CausalTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """`[B, L - 1]` exact log-probabilities of `tokens[:, 1:]` given their prefixes
    (differentiable; call under `torch.no_grad()` when no gradient is wanted)."""
    logits = model(tokens[:, :-1])
    return F.log_softmax(logits, dim=-1).gather(2, tokens[:, 1:, None]).squeeze(2)


def sequence_logprob(model: CausalTransformer, tokens: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """`[B]` log-probability of each completion `tokens[:, prompt_length:]` given its prompt."""
    if not 1 <= prompt_length <= tokens.shape[1]:
        raise ValueError(f"prompt_length must lie in [1, {tokens.shape[1]}], got {prompt_length}")
    return token_logprobs(model, tokens)[:, prompt_length - 1 :].sum(dim=1)
