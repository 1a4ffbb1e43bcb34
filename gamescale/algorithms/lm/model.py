"""A small causal transformer in torch (0.5M to 50M parameters by config), with a KV cache.

Conventions: `tokens` is a LongTensor `[B, L]` of ids in `[0, vocab_size)`; `forward`
returns float32 logits `[B, L, V]` where `logits[:, t]` predicts `tokens[:, t + 1]`.
Blocks are pre-norm (LayerNorm -> attention -> residual, LayerNorm -> MLP -> residual);
positions are learned embeddings or rotary (`positions="rotary"`). With a `KVCache`, the
tokens given are the ones that follow the `cache.length` tokens already in the cache, and
the cache grows by `L`; without one, the sequence starts at position 0.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gamescale.algorithms.lm.shapes import ModelShape, TransformerConfig  # noqa: F401


@dataclass
class KVCache:
    """Keys and values of every layer, preallocated: `keys[i]`, `values[i]` are
    `[B, n_heads, context_length, head_dim]`; the first `length` positions are filled."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    length: int = 0

    @property
    def batch_size(self) -> int:
        return int(self.keys[0].shape[0])

    @property
    def capacity(self) -> int:
        return int(self.keys[0].shape[2])


def _rotary_tables(length: int, head_dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return torch.cos(angles), torch.sin(angles)  # [length, head_dim / 2]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of `x` `[B, H, L, D]` with tables `[L, D/2]` (pairs are (even, odd) dims)."""
    x_even, x_odd = x[..., 0::2], x[..., 1::2]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    out = torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)
    return out.flatten(-2)


class _Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = cfg.n_heads, cfg.head_dim, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(
        self,
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor] | None,
        layer_cache: tuple[torch.Tensor, torch.Tensor] | None,
        start: int,
    ) -> torch.Tensor:
        batch, length, d_model = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            q, k = _rotate(q, *rotary), _rotate(k, *rotary)
        dropout = self.dropout if self.training else 0.0
        if layer_cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            keys, values = layer_cache
            keys[:, :, start : start + length] = k.to(keys.dtype)
            values[:, :, start : start + length] = v.to(values.dtype)
            k_all, v_all = keys[:, :, : start + length].to(q.dtype), values[:, :, : start + length].to(q.dtype)
            if length == 1:
                y = F.scaled_dot_product_attention(q, k_all, v_all, dropout_p=dropout)
            else:
                q_pos = torch.arange(start, start + length, device=x.device)[:, None]
                k_pos = torch.arange(start + length, device=x.device)[None, :]
                y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=k_pos <= q_pos, dropout_p=dropout)
        return self.out(y.transpose(1, 2).reshape(batch, length, d_model))


class _Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.attn = _Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, rotary, layer_cache, start):
        x = x + self.drop(self.attn(self.norm1(x), rotary, layer_cache, start))
        return x + self.drop(self.mlp(self.norm2(x)))


class CausalTransformer(nn.Module):
    """A decoder-only transformer: token (+ learned position) embedding, pre-norm blocks,
    a final LayerNorm and an untied output head."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.context_length, config.d_model) if config.positions == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def init_cache(self, batch: int, device: torch.device | str | None = None) -> KVCache:
        """An empty cache for `batch` sequences of up to `context_length` tokens."""
        cfg = self.config
        device = torch.device(device) if device is not None else self.head.weight.device
        dtype = torch.bfloat16 if (cfg.autocast_bf16 and device.type == "cuda") else torch.float32
        shape = (batch, cfg.n_heads, cfg.context_length, cfg.head_dim)
        return KVCache(
            keys=[torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)],
            values=[torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)],
        )

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits `[B, L, V]` (float32) for `tokens` `[B, L]`; appends to `cache` when given."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [batch, length], got shape {tuple(tokens.shape)}")
        batch, length = tokens.shape
        start = 0 if cache is None else cache.length
        if start + length > self.config.context_length:
            raise ValueError(
                f"sequence of {start + length} tokens is longer than the context length {self.config.context_length}"
            )
        if cache is not None and cache.batch_size != batch:
            raise ValueError(f"cache holds {cache.batch_size} sequences but tokens have {batch}")
        use_autocast = self.config.autocast_bf16 and tokens.is_cuda
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_autocast):
            x = self.embed(tokens)
            rotary = None
            if self.pos is not None:
                x = x + self.pos(torch.arange(start, start + length, device=tokens.device))[None]
            else:
                cos, sin = _rotary_tables(start + length, self.config.head_dim, tokens.device)
                rotary = (cos[start:], sin[start:])
            x = self.drop(x)
            for i, block in enumerate(self.blocks):
                layer_cache = None if cache is None else (cache.keys[i], cache.values[i])
                x = block(x, rotary, layer_cache, start)
            logits = self.head(self.norm(x))
        if cache is not None:
            cache.length = start + length
        return logits.float()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _init_weights(model: CausalTransformer, generator: torch.Generator) -> None:
    """GPT-2 style: normal(0, 0.02) weights, zero biases, residual projections scaled by
    1/sqrt(2 n_layers), LayerNorms at identity."""
    residual_std = 0.02 / math.sqrt(2 * model.config.n_layers)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.zero_()
            elif ".norm" in name or name.startswith("norm"):
                param.fill_(1.0)
            else:
                std = residual_std if (name.endswith("attn.out.weight") or name.endswith("mlp.2.weight")) else 0.02
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def build_model(cfg: TransformerConfig, seed: int) -> CausalTransformer:
    """A `CausalTransformer` whose initial weights depend only on `cfg` and `seed`."""
    model = CausalTransformer(cfg)
    generator = torch.Generator().manual_seed(int(seed))
    _init_weights(model, generator)
    return model


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with `count` torch intra-op threads (tiny models only lose from more:
    on a busy machine the extra threads spin against other processes)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
