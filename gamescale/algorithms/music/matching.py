"""The prompt-music matching model: a prompt encoder and a music encoder trained
contrastively (symmetric InfoNCE) on real pieces and their metadata prompts. The cosine of
the two embeddings is the quality model's matching score; the music encoder alone is the
embedding that the diversity reward compares.

Shapes: prompt tokens `[B, PROMPT_LENGTH]` (attribute tokens or NULL), music tokens
`[B, M]` (the tokens after BOS, PAD after the end; M = `MatcherConfig.music_tokens`),
embeddings `[B, dim]`, L2-normalised.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gamescale.algorithms.music.config import MatcherConfig
from gamescale.envs.music import vocab as V


class Matcher(nn.Module):
    """Prompt encoder: the sum of one learned vector per attribute token (a NULL slot adds
    its own vector), then an MLP. Music encoder: token embeddings, a width-5 convolution
    (local pitch / rhythm patterns), masked mean and max pooling, then a linear map."""

    def __init__(self, config: MatcherConfig):
        super().__init__()
        h = config.hidden
        self.config = config
        # one NULL vector per attribute slot: PROMPT_LENGTH extra rows after the vocabulary
        self.prompt_embed = nn.Embedding(V.VOCAB_SIZE + V.PROMPT_LENGTH, h)
        self.prompt_mlp = nn.Sequential(nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, config.dim))
        self.music_embed = nn.Embedding(V.VOCAB_SIZE, h, padding_idx=V.PAD)
        self.music_conv = nn.Conv1d(h, h, kernel_size=5, padding=2)
        self.music_out = nn.Linear(2 * h, config.dim)

    def embed_prompts(self, prompts: torch.Tensor) -> torch.Tensor:
        slots = torch.arange(V.PROMPT_LENGTH, device=prompts.device)
        ids = torch.where(prompts == V.NULL, V.VOCAB_SIZE + slots, prompts)
        return F.normalize(self.prompt_mlp(self.prompt_embed(ids).sum(dim=1)), dim=1)

    def embed_music(self, music: torch.Tensor) -> torch.Tensor:
        mask = (music != V.PAD).float()[:, :, None]
        x = F.gelu(self.music_conv(self.music_embed(music).transpose(1, 2))).transpose(1, 2)
        mean = (x * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
        peak = x.masked_fill(mask == 0, -1e4).max(dim=1).values
        return F.normalize(self.music_out(torch.cat((mean, peak), dim=1)), dim=1)


def build_matcher(config: MatcherConfig, seed: int) -> Matcher:
    """A `Matcher` whose initial weights depend only on `config` and `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return Matcher(config)


def music_window(tokens: np.ndarray | torch.Tensor, length: int) -> torch.Tensor:
    """`[B, length]` the music tokens after BOS of each row of `[B, L]` sequences that start
    at BOS, cut or PAD-filled to `length`; everything from the first EOS on becomes PAD."""
    tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)[:, 1 : 1 + length]
    out = torch.full((tokens.shape[0], length), V.PAD, dtype=torch.long)
    out[:, : tokens.shape[1]] = tokens
    ended = torch.cumsum(out == V.EOS, dim=1) > 0
    return out.masked_fill(ended, V.PAD)


def piece_windows(pieces: list[np.ndarray], length: int) -> torch.Tensor:
    """`[N, length]` the opening `length` music tokens of each piece (BOS ... EOS)."""
    width = max(len(p) for p in pieces)
    padded = np.full((len(pieces), width), V.PAD, dtype=np.int64)
    for row, piece in enumerate(pieces):
        padded[row, : len(piece)] = piece
    return music_window(padded, length)


def info_nce(prompt_emb: torch.Tensor, music_emb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE over a batch whose row i of each side belong together."""
    logits = prompt_emb @ music_emb.T / temperature
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def train_matcher(
    config: MatcherConfig, music: torch.Tensor, prompts: torch.Tensor, seed: int
) -> tuple[Matcher, list[float]]:
    """Train on `music [N, M]` windows and their `prompts [N, PROMPT_LENGTH]`; returns the
    model (eval mode) and its loss per step. Batches are drawn without replacement from a
    seeded generator; pieces that share a prompt are negatives of each other (a small
    bias at this scale)."""
    if music.shape[0] < 2:
        raise ValueError(f"the matcher needs at least 2 pieces, got {music.shape[0]}")
    model = build_matcher(config, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(int(seed))
    batch = min(config.batch_size, music.shape[0])
    losses = []
    model.train()
    for _ in range(config.steps):
        rows = torch.randperm(music.shape[0], generator=generator)[:batch]
        loss = info_nce(model.embed_prompts(prompts[rows]), model.embed_music(music[rows]), config.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return model.eval(), losses


@torch.no_grad()
def match_scores(model: Matcher, prompts: torch.Tensor, music: torch.Tensor) -> torch.Tensor:
    """`[B]` cosine between each prompt's and its music's embedding (in [-1, 1])."""
    return (model.embed_prompts(prompts) * model.embed_music(music)).sum(dim=1)


@torch.no_grad()
def retrieval_accuracy(model: Matcher, prompts: torch.Tensor, music: torch.Tensor) -> float:
    """Share of pieces whose own prompt scores highest among all the given prompts that
    differ from each other (pieces with an identical prompt count as a match): chance is
    about 1 / the number of distinct prompts."""
    scores = model.embed_music(music) @ model.embed_prompts(prompts).T  # [piece, prompt]
    best = scores.argmax(dim=1)
    return float((prompts[best] == prompts).all(dim=1).float().mean())
