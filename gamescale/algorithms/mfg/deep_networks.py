"""The torch side of the deep mean-field methods (`deep.py`): the `(t, s)` network and the
two losses the learners train with. Only learner processes import this module; the driver
evaluates the same network from its weights in numpy (`deep.NetworkTable`).

Each loss also has a hand-derived gradient (`regression_gradient`, `cross_entropy_gradient`;
`LearnerSpec.gradient_fn`). The network is small (a 128 x 128 step is ~50 MFLOP), so a step
through autograd is mostly dispatch and bookkeeping; the explicit backward pass is a dozen
large tensor operations, does not touch `.grad`, and computes the K gradient slices of a
step in one pass, each slice exactly as it would be alone, so learner replicas can share
the slices out (`TorchLearner`). Its agreement with autograd is tested.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import torch
from torch import nn
from torch.nn import functional as F

from gamescale.algorithms.learner import arrow_tensors


class TimeStateNetwork(nn.Module):
    """An MLP of `(t, s)`: `forward(t [B], s [B]) -> [B, A]` (Q-values or policy logits).

    The first layer is a sum of a state and a time embedding, which equals a linear layer
    on the concatenated one-hot codes of s (S entries) and t (T entries). `legal [S, A]`
    (a buffer, so it travels with the weights) masks illegal actions where needed.
    `zero_head` zeroes the output layer, so the network starts at all-zero outputs: a
    softmax of them is the uniform policy (the start of OMD and of the average policy).
    """

    def __init__(
        self,
        num_states: int,
        horizon: int,
        num_actions: int,
        hidden_sizes: tuple[int, ...],
        legal: np.ndarray,
        zero_head: bool = False,
    ):
        super().__init__()
        width = hidden_sizes[0]
        self.state_embedding = nn.Embedding(num_states, width)
        self.time_embedding = nn.Embedding(horizon, width)
        nn.init.normal_(self.state_embedding.weight, std=0.5)
        nn.init.normal_(self.time_embedding.weight, std=0.5)
        self.bias = nn.Parameter(torch.zeros(width))
        layers: list[nn.Module] = []
        for size_in, size_out in zip(hidden_sizes[:-1], hidden_sizes[1:], strict=True):
            layers += [nn.ReLU(), nn.Linear(size_in, size_out)]
        layers += [nn.ReLU(), nn.Linear(hidden_sizes[-1], num_actions)]
        self.head = nn.Sequential(*layers)
        if zero_head:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.register_buffer("legal", torch.as_tensor(np.asarray(legal, dtype=bool)))

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.head(self.state_embedding(s) + self.time_embedding(t) + self.bias)

    def layout(self) -> tuple[list[nn.Parameter], list[nn.Linear]]:
        """(`parameters()` in order, the Linear layers of `head`), walked once: the explicit
        gradient needs both every step, and `parameters()` recurses through the submodules on
        each call. Moving or loading the module keeps its Parameter objects, so they stay valid."""
        if "_layout" not in self.__dict__:
            self.__dict__["_layout"] = (
                list(self.parameters()),
                [layer for layer in self.head if isinstance(layer, nn.Linear)],
            )
        return self.__dict__["_layout"]


def make_network(
    num_states: int,
    horizon: int,
    num_actions: int,
    hidden_sizes: tuple[int, ...],
    legal: np.ndarray,
    zero_head: bool = False,
) -> TimeStateNetwork:
    """Module factory of the learners (wrap in functools.partial)."""
    return TimeStateNetwork(num_states, horizon, num_actions, tuple(hidden_sizes), legal, zero_head)


def _columns(module: nn.Module, batch: pa.RecordBatch, *names: str) -> list[torch.Tensor]:
    """Columns as tensors on the module's device, as a `gradient_fn` receives them
    (`learner.arrow_tensors`: integer columns, int32 on the wire, as int64)."""
    columns = arrow_tensors(batch.select(list(names)), module.legal.device)
    return [columns[name] for name in names]


def regression_loss(module: nn.Module, batch: pa.RecordBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean squared error of `Q(t, s, action)` against the `target` column (float32)."""
    t, s, a, target = _columns(module, batch, "t", "state", "action", "target")
    q = module(t, s).gather(1, a[:, None])[:, 0]
    loss = F.mse_loss(q, target)
    return loss, {"q_loss": float(loss.detach())}


def cross_entropy_loss(module: nn.Module, batch: pa.RecordBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the legal-masked policy logits at `(t, state)` against `action`."""
    t, s, a = _columns(module, batch, "t", "state", "action")
    logits = module(t, s).masked_fill(~module.legal[s], -1e9)
    loss = F.cross_entropy(logits, a)
    return loss, {"policy_loss": float(loss.detach())}


# --------------------------------------------------------------------------- explicit gradients
# Every tensor carries a leading slice axis K: a call computes the gradients of K equal
# contiguous slices of the minibatch, each of its own mean loss, with batched products
# (`baddbmm`, `bmm`) whose per-slice kernels are those of a call with that slice alone.
# So one process computing K slices and K replicas computing one each agree bit for bit,
# and K slices cost about what one unsliced pass costs (the same number of operations).


def _forward_saved(module: TimeStateNetwork, t: torch.Tensor, s: torch.Tensor, num_slices: int):
    """The forward pass `[K, n, ...]` keeping what the backward pass needs: the
    pre-activations of every hidden layer (the embedding sum first), their ReLUs, the
    output, and the Linear layers."""
    linears = module.layout()[1]
    hidden = module.state_embedding.weight.index_select(0, s)
    hidden += module.time_embedding.weight.index_select(0, t)
    hidden += module.bias
    hidden = hidden.view(num_slices, len(s) // num_slices, -1)
    pre, active = [], []
    for layer in linears:
        pre.append(hidden)
        active.append(hidden.clamp_min(0.0))
        hidden = torch.baddbmm(layer.bias, active[-1], layer.weight.t().expand(num_slices, -1, -1))
    return pre, active, hidden, linears


def _slice_embedding_gradient(weight: torch.Tensor, index: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Per-slice gradient `[K, rows, W]` of an embedding looked up at `index [K * n]`: slice k's
    rows are added into block k of one `[K * rows, W]` table (in row order, as alone)."""
    num_slices, n, width = delta.shape
    rows = weight.shape[0]
    if num_slices > 1:
        index = index + _block_offsets(num_slices, n, rows, index.device)
    table = torch.zeros(num_slices * rows, width, dtype=delta.dtype, device=delta.device)
    return table.index_add_(0, index, delta.reshape(-1, width)).view(num_slices, rows, width)


@functools.lru_cache(maxsize=32)
def _block_offsets(num_slices: int, n: int, rows: int, device: torch.device) -> torch.Tensor:
    """`[K * n]`: k * rows for the n rows of slice k (where slice k's table block starts)."""
    return torch.arange(num_slices, device=device).repeat_interleave(n) * rows


def _backward(
    module: TimeStateNetwork,
    t: torch.Tensor,
    s: torch.Tensor,
    saved: tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, list[nn.Linear]],
    d_out: torch.Tensor,
) -> list[torch.Tensor]:
    """Per-slice gradients `[K, *p.shape]` of every parameter (in `module.parameters()`
    order) given d loss / d output `[K, n, A]`."""
    pre, active, _, linears = saved
    num_slices = d_out.shape[0]
    grads: dict[int, torch.Tensor] = {}
    delta = d_out
    for index in range(len(linears) - 1, -1, -1):
        layer = linears[index]
        grads[id(layer.weight)] = torch.bmm(delta.transpose(1, 2), active[index])
        grads[id(layer.bias)] = delta.sum(1)
        # ReLU's backward kernel: zero where the pre-activation was not positive
        delta = torch.ops.aten.threshold_backward(
            torch.bmm(delta, layer.weight.expand(num_slices, -1, -1)), pre[index], 0.0
        )
    grads[id(module.bias)] = delta.sum(1)
    grads[id(module.state_embedding.weight)] = _slice_embedding_gradient(module.state_embedding.weight, s, delta)
    grads[id(module.time_embedding.weight)] = _slice_embedding_gradient(module.time_embedding.weight, t, delta)
    return [grads[id(p)] for p in module.layout()[0]]


def _check_slices(rows: int, num_slices: int) -> int:
    if num_slices < 1 or rows % num_slices:
        raise ValueError(f"{rows} rows do not make {num_slices} equal gradient slices")
    return rows // num_slices


@torch.no_grad()
def regression_gradient(
    module: nn.Module, columns: Mapping[str, torch.Tensor], num_slices: int = 1
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """`regression_loss` and its gradients on `num_slices` equal slices, without autograd:
    (grads `[K, *p.shape]`, metrics `{name: [K]}` incl. "loss"). `columns` as the learner
    gives them (`learner.arrow_tensors`: int64 indices, a float32 target)."""
    t, s, a, target = (columns[name] for name in ("t", "state", "action", "target"))
    n = _check_slices(len(t), num_slices)
    saved = _forward_saved(module, t, s, num_slices)
    out = saved[2]
    chosen = a.view(num_slices, n, 1)
    error = out.gather(2, chosen)[..., 0] - target.view(num_slices, n)
    loss = error.square().mean(1)
    d_out = torch.zeros_like(out).scatter_(2, chosen, (error * (2.0 / n))[..., None])
    return _backward(module, t, s, saved, d_out), {"q_loss": loss, "loss": loss}


@torch.no_grad()
def cross_entropy_gradient(
    module: nn.Module, columns: Mapping[str, torch.Tensor], num_slices: int = 1
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """`cross_entropy_loss` and its gradients on `num_slices` equal slices, without autograd:
    (grads `[K, *p.shape]`, metrics `{name: [K]}` incl. "loss"); `columns` as for
    `regression_gradient`."""
    t, s, a = (columns[name] for name in ("t", "state", "action"))
    n = _check_slices(len(t), num_slices)
    saved = _forward_saved(module, t, s, num_slices)
    illegal = ~module.legal[s].view(num_slices, n, -1)
    log_p = torch.log_softmax(saved[2].masked_fill(illegal, -1e9), dim=2)
    chosen = a.view(num_slices, n, 1)
    loss = -log_p.gather(2, chosen)[..., 0].mean(1)
    d_out = log_p.exp_().scatter_add_(2, chosen, torch.full((num_slices, n, 1), -1.0, device=log_p.device)).div_(n)
    d_out.masked_fill_(illegal, 0.0)  # the masked logits are constants
    return _backward(module, t, s, saved, d_out), {"policy_loss": loss, "loss": loss}
