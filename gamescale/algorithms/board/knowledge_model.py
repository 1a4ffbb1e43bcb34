"""The board model (torch): the lm family's causal transformer over the byte tokenizer,
trained on the sequences of `model_data`, with the inference methods search calls.

Built on the learner actor from a `Deferred("...:build_board_model", (shape,))`, so the
driver never imports torch. Rollout workers reach it through a `ModelClient`:

- `move_values(states, legal)`: states uint8 `[B, S]` (the text states' bytes), legal
  bool `[B, A]` (the rules'). Writes the value block after `<state> L:<legal> V:` one move
  at a time through the KV cache: at each `a=` it reads the distribution over the 11
  value buckets, feeds back its most likely bucket (or `-` for an illegal move) and goes
  on. Returns `values` float32 `[B, A]` (the expected value under that distribution; 0
  where illegal) and `buckets` int64 `[B, A]` (the written bucket, -1 where illegal).
- `generate(prompts, max_new_tokens)`: greedy continuation (top-1) of equal-length
  prompts `[B, P]` (token ids) through `lm.sampling.sample`; returns `[B, N]` ids.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn

from gamescale.algorithms.board.model_data import BUCKETS, ILLEGAL, bucket_values
from gamescale.algorithms.lm.model import build_model
from gamescale.algorithms.lm.sampling import sample
from gamescale.algorithms.lm.shapes import TransformerConfig
from gamescale.algorithms.lm.tokenizer import ByteTokenizer

TOKENIZER = ByteTokenizer()
_BUCKET_IDS = torch.tensor([ord(c) for c in BUCKETS])
_ILLEGAL_ID = ord(ILLEGAL)


class BoardModel(nn.Module):
    """A `CausalTransformer` (`self.net`) with the board model's inference methods."""

    def __init__(self, shape: dict[str, Any], seed: int = 0):
        super().__init__()
        cfg = TransformerConfig(vocab_size=TOKENIZER.vocab_size, **shape)
        self.net = build_model(cfg, seed)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)

    def move_values(self, states: torch.Tensor, legal: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, actions = legal.shape
        device = self.net.head.weight.device
        legal_chars = [[str(a).encode()[0] if ok else _ILLEGAL_ID for a, ok in enumerate(row)] for row in legal.tolist()]
        prompt = torch.cat([
            torch.full((batch, 1), TOKENIZER.bos_id, dtype=torch.long),
            states.long().cpu(),
            torch.tensor([list(b" L:")] * batch, dtype=torch.long),
            torch.tensor(legal_chars, dtype=torch.long).reshape(batch, actions),
            torch.tensor([list(b" V:")] * batch, dtype=torch.long),
        ], dim=1).to(device)
        centres = torch.as_tensor(bucket_values(), dtype=torch.float32, device=device)
        bucket_ids = _BUCKET_IDS.to(device)
        cache = self.net.init_cache(batch, device)
        values = torch.zeros(batch, actions, device=device)
        written = torch.full((batch, actions), -1, dtype=torch.long, device=device)
        feed = prompt
        for a in range(actions):
            step = torch.tensor([list(f"{a}=".encode())] * batch, dtype=torch.long, device=device)
            logits = self.net(torch.cat([feed, step], dim=1), cache)[:, -1]
            probs = F.softmax(logits[:, bucket_ids], dim=-1)  # [B, 11]
            ok = legal[:, a].to(device)
            values[:, a] = torch.where(ok, probs @ centres, torch.zeros_like(values[:, a]))
            best = probs.argmax(dim=-1)
            written[:, a] = torch.where(ok, best, torch.full_like(best, -1))
            token = torch.where(ok, bucket_ids[best], torch.full_like(best, _ILLEGAL_ID))
            space = torch.full((batch, 1), ord(" "), dtype=torch.long, device=device)
            feed = torch.cat([token[:, None], space], dim=1)
        return {"values": values, "buckets": written}

    def generate(self, prompts: torch.Tensor, max_new_tokens: torch.Tensor) -> torch.Tensor:
        count = int(max_new_tokens)
        count = min(count, self.net.config.context_length - prompts.shape[1])
        out = sample(self.net, prompts.long(), count, top_k=1, generator=torch.Generator().manual_seed(0))
        return out.completions


def build_board_model(shape: dict[str, Any], seed: int = 0) -> BoardModel:
    """The learner's module factory (named by a `Deferred`)."""
    return BoardModel(shape, seed)


def sequence_loss(module: BoardModel, batch: pa.RecordBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token cross-entropy on each row's `text` after its first `skip` characters
    (the state is given, not learned), plus the EOS; token accuracy as a metric."""
    texts = batch.column("text").to_pylist()
    skips = batch.column("skip").to_pylist()
    ids, mask = TOKENIZER.encode_batch(texts, add_bos=True, add_eos=True)
    ids, mask = ids.to(module.net.head.weight.device), mask.to(module.net.head.weight.device)
    target = ids[:, 1:]
    positions = torch.arange(target.shape[1], device=ids.device)[None, :]
    # target position t is the token at t + 1; the BOS shifts characters by one
    weight = mask[:, 1:] & (positions >= torch.tensor(skips, device=ids.device)[:, None])
    logits = module(ids[:, :-1])
    loss_all = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
    weight_f = weight.reshape(-1).float()
    loss = (loss_all * weight_f).sum() / weight_f.sum().clamp_min(1.0)
    with torch.no_grad():
        correct = (logits.argmax(-1) == target).reshape(-1).float()
        accuracy = float((correct * weight_f).sum() / weight_f.sum().clamp_min(1.0))
    return loss, {"token_accuracy": accuracy}

