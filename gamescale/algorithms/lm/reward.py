"""A reward model learned from preference pairs labelled by a stated scoring rule (BOND lab).

Pairs `(y_a, y_b)` of completions are drawn from the reference policy; a label says
which one is preferred, drawn from the Bradley-Terry model of the TRUE reward r*:
P(y_a preferred) = sigmoid((r*(y_a) - r*(y_b)) / temperature). The reward model
r_phi is trained by the Bradley-Terry log-likelihood, so it learns r* / temperature up
to a constant, within what its features and the finite data allow; the gap between r_phi
and r* is what a policy optimised against r_phi can exploit.

Shapes: completions `[B, T]` int64 token ids; rewards `[B]` float32.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gamescale.algorithms.lm.config import RewardModelConfig


class RewardModel(nn.Module):
    """r_phi(y): mean of learned token and bigram features of a completion, then an MLP.

    `forward(completions [B, T]) -> [B]` (float32). Bigram `(a, b)` is feature `a * V + b`.
    """

    def __init__(self, vocab_size: int, hidden: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.tokens = nn.Embedding(vocab_size, hidden)
        self.bigrams = nn.Embedding(vocab_size * vocab_size, hidden)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, completions: torch.Tensor) -> torch.Tensor:
        features = self.tokens(completions).mean(dim=1)
        if completions.shape[1] > 1:
            pairs = completions[:, :-1] * self.vocab_size + completions[:, 1:]
            features = features + self.bigrams(pairs).mean(dim=1)
        return self.mlp(features).squeeze(-1)


def build_reward_model(vocab_size: int, hidden: int, seed: int) -> RewardModel:
    """A `RewardModel` whose initial weights depend only on the arguments."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return RewardModel(vocab_size, hidden)


def preference_labels(
    true_a: np.ndarray, true_b: np.ndarray, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """1.0 where y_a is preferred, drawn from Bradley-Terry on the true rewards `[B]`."""
    p_a = 1.0 / (1.0 + np.exp(-(np.asarray(true_a) - np.asarray(true_b)) / temperature))
    return (rng.random(len(p_a)) < p_a).astype(np.float32)


def bradley_terry_loss(model: RewardModel, a: torch.Tensor, b: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the labels under P(a preferred) = sigmoid(r(a) - r(b))."""
    return F.binary_cross_entropy_with_logits(model(a) - model(b), label)


def train_reward_model(
    cfg: RewardModelConfig, vocab_size: int, a: np.ndarray, b: np.ndarray, label: np.ndarray
) -> tuple[RewardModel, float]:
    """Fit a reward model on pairs `a, b [P, T]` with labels `[P]`; returns it and the last loss.

    Deterministic in `cfg.seed` (initialisation and minibatch order)."""
    if len(a) != len(b) or len(a) != len(label):
        raise ValueError(f"preference data disagree: {len(a)} / {len(b)} completions, {len(label)} labels")
    model = build_reward_model(vocab_size, cfg.hidden, cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    a_t, b_t = torch.as_tensor(a, dtype=torch.int64), torch.as_tensor(b, dtype=torch.int64)
    label_t = torch.as_tensor(label, dtype=torch.float32)
    rng = np.random.default_rng([cfg.seed, 1])
    size = min(cfg.batch_size, len(a))
    loss = torch.tensor(float("nan"))
    for _ in range(cfg.steps):
        rows = torch.as_tensor(rng.choice(len(a), size=size, replace=False))
        loss = bradley_terry_loss(model, a_t[rows], b_t[rows], label_t[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    return model, float(loss.detach())


@torch.no_grad()
def score(model: RewardModel, completions: np.ndarray | torch.Tensor) -> np.ndarray:
    """r_phi `[B]` float64 of completions `[B, T]`."""
    return model(torch.as_tensor(np.asarray(completions), dtype=torch.int64)).double().numpy()


def pairwise_accuracy(
    predicted_a: np.ndarray, predicted_b: np.ndarray, true_a: np.ndarray, true_b: np.ndarray
) -> float:
    """Fraction of pairs with distinct true rewards that the predictions order correctly."""
    true_diff = np.asarray(true_a) - np.asarray(true_b)
    distinct = true_diff != 0
    if not np.any(distinct):
        return float("nan")
    agree = np.sign(np.asarray(predicted_a) - np.asarray(predicted_b)) == np.sign(true_diff)
    return float(agree[distinct].mean())
