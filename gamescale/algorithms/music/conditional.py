"""The prompt-conditioned music transformer: condition-dropout training, classifier-free
guidance (CFG) logits and CFG sampling with a KV cache.

The model is the lab's `CausalTransformer` over the music vocabulary; a sequence is the
prompt's `PROMPT_LENGTH` attribute tokens, then BOS and the piece. The unconditional model
is the same network with every prompt token NULL, so CFG needs no second network and the
positions of the music are the same in both passes.

Shapes: prompts `[B, P]` with P = PROMPT_LENGTH + 1 (attribute tokens then BOS), sequences
`[B, L]`, logits `[B, L, V]` with V = VOCAB_SIZE.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn.functional as F

from gamescale.algorithms.lm.model import CausalTransformer, build_model
from gamescale.algorithms.lm.sampling import Samples, decode
from gamescale.algorithms.lm.shapes import TransformerConfig
from gamescale.algorithms.music.config import ConditionalMusicConfig
from gamescale.envs.music import vocab as V

PROMPT_TOKENS = V.PROMPT_LENGTH + 1  # attribute tokens + BOS


def build_conditional_model(config: ConditionalMusicConfig, seed: int | None = None) -> CausalTransformer:
    """A `CausalTransformer` over the music vocabulary with `config.model`'s shape."""
    shape = config.model
    cfg = TransformerConfig(vocab_size=V.VOCAB_SIZE, context_length=config.context_length, d_model=shape.d_model,
                            n_layers=shape.n_layers, n_heads=shape.n_heads, d_ff=shape.d_ff, positions=shape.positions)
    return build_model(cfg, config.seed if seed is None else seed)


def prompt_tensor(prompts: list[V.Prompt]) -> torch.Tensor:
    """`[B, P]` attribute tokens then BOS, one row per prompt."""
    return torch.tensor([[*p.tokens(), V.BOS] for p in prompts], dtype=torch.long)


def unconditional(prompts: torch.Tensor) -> torch.Tensor:
    """The same rows with every attribute token replaced by NULL (BOS kept)."""
    out = prompts.clone()
    out[:, : V.PROMPT_LENGTH] = V.NULL
    return out


def training_batch(
    pieces: list[np.ndarray],
    prompts: list[V.Prompt],
    context_length: int,
    condition_dropout: float,
    attribute_dropout: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences `[B, L]` (prompt, BOS, the piece's opening, PAD) and the loss mask `[B, L-1]`
    over the predicted music tokens (position t predicts token t + 1; the prompt and BOS
    are given, never predicted). With probability `condition_dropout` a row's whole prompt
    is NULL; otherwise each attribute is NULL with probability `attribute_dropout`."""
    if len(pieces) != len(prompts) or not pieces:
        raise ValueError(f"need as many prompts as pieces (>= 1), got {len(prompts)} and {len(pieces)}")
    cond = prompt_tensor(prompts)
    drop_all = torch.rand(len(pieces), 1, generator=generator) < condition_dropout
    drop_one = torch.rand(len(pieces), V.PROMPT_LENGTH, generator=generator) < attribute_dropout
    cond[:, : V.PROMPT_LENGTH] = cond[:, : V.PROMPT_LENGTH].masked_fill(drop_all | drop_one, V.NULL)
    music = [torch.as_tensor(np.asarray(p)[1:], dtype=torch.long) for p in pieces]  # BOS comes with the prompt
    length = min(context_length, PROMPT_TOKENS + max(m.numel() for m in music))
    tokens = torch.full((len(pieces), length), V.PAD, dtype=torch.long)
    tokens[:, :PROMPT_TOKENS] = cond
    for row, m in enumerate(music):
        m = m[: length - PROMPT_TOKENS]
        tokens[row, PROMPT_TOKENS : PROMPT_TOKENS + m.numel()] = m
    mask = tokens[:, 1:] != V.PAD
    mask[:, : PROMPT_TOKENS - 1] = False
    return tokens, mask


def sequence_loss(model: CausalTransformer, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the masked next tokens."""
    logits = model(tokens[:, :-1])
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), reduction="none")
    mask = mask.reshape(-1).float()
    return (losses * mask).sum() / mask.sum().clamp_min(1.0)


def check_guidance_scale(scale) -> float:
    """`scale` as a float; anything but a finite real number is a one-line ValueError."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not np.isfinite(float(scale)):
        raise ValueError(f"guidance scale must be a finite number, got {scale!r}")
    return float(scale)


def cfg_logits(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + scale (cond - uncond), elementwise over `[..., V]`. `torch.lerp` computes it
    so that scale 1 returns `cond` and scale 0 returns `uncond` exactly (bit for bit)."""
    scale = check_guidance_scale(scale)
    if cond.shape != uncond.shape:
        raise ValueError(f"conditional and unconditional logits differ in shape: {tuple(cond.shape)} vs {tuple(uncond.shape)}")
    return torch.lerp(uncond.float(), cond.float(), scale)


def guided_logits(model: CausalTransformer, tokens: torch.Tensor, scale: float) -> torch.Tensor:
    """`[B, L-1, V]` CFG logits at every position of full sequences `[B, L]` (two passes:
    the sequences as given, and with their prompts NULL)."""
    return cfg_logits(model(tokens[:, :-1]), model(unconditional(tokens)[:, :-1]), scale)


def sample_cfg(
    model: CausalTransformer,
    prompts: torch.Tensor,
    max_new_tokens: int,
    guidance_scale: float,
    temperature: float = 1.0,
    top_k: int | None = None,
    *,
    generator: torch.Generator,
) -> Samples:
    """Draw from the CFG distribution: each step runs the conditional and the unconditional
    rows (one batch of 2B through one KV cache, so twice the work of plain sampling) and
    samples from their guided mix. Draws use the lab's inverse-CDF rule, so scale 1 gives
    exactly `lm.sampling.sample`'s tokens for the same generator. `logprobs` are under the
    guided distribution at temperature 1."""
    scale = check_guidance_scale(guidance_scale)
    prompt_length = prompts.shape[-1]
    cache = None

    def guided_at(tokens: torch.Tensor, position: int) -> torch.Tensor:
        nonlocal cache
        batch = tokens.shape[0]
        if cache is None:
            cache = model.init_cache(2 * batch, tokens.device)
            prefix = tokens[:, :prompt_length]
            step_input = torch.cat((prefix, unconditional(prefix)))
        else:
            step_input = tokens[:, position - 1 : position].repeat(2, 1)
        both = model(step_input, cache)[:, -1]
        return cfg_logits(both[:batch], both[batch:], scale)

    return decode(model, prompts, max_new_tokens, guided_at, temperature, top_k, generator=generator)
