"""A torch learner: one module, one optimizer, updates from Arrow batches.

This is the in-process learner; `gamescale.framework.actors` hosts the same class in a
Ray actor (on a GPU when the cluster has one), and data-parallel replicas of it in several
actors joined by a `torch.distributed` process group. Weights travel as numpy arrays and
are checkpointed as tensors only, so a checkpoint is data, never code.
"""

from __future__ import annotations

import functools
import io
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from gamescale.algorithms.base import LearnerSpec, Metrics, TargetFn
from gamescale.algorithms.node_gather import NodeGather


@dataclass(frozen=True)
class ReplicaGroup:
    """This process's place among `size` data-parallel replicas of a learner (a joined
    default `torch.distributed` process group when size > 1).

    `transport` "auto" gathers through shared memory when every replica is on this node
    (`node_gather.NodeGather`, set up over the process group at the first gather of each
    block size in bytes) and over the process group otherwise; "process_group" always uses the group.
    """

    rank: int = 0
    size: int = 1
    transport: str = "auto"
    _node_gathers: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.transport not in ("auto", "process_group"):
            raise ValueError(f"unknown replica transport {self.transport!r}; use 'auto' or 'process_group'")

    def slices(self, num_slices: int) -> range:
        """The contiguous block of gradient slices this replica computes."""
        if num_slices % self.size:
            raise ValueError(f"{self.size} learner replicas cannot split {num_slices} gradient slices evenly")
        per = num_slices // self.size
        return range(self.rank * per, (self.rank + 1) * per)

    def gather(self, mine: torch.Tensor) -> torch.Tensor:
        """Every replica's `mine` `[k, D]`, stacked in rank order `[size * k, D]`. Read it
        before the next gather: through shared memory it is a view of the exchange buffer."""
        if self.size == 1:
            return mine
        import torch.distributed as dist

        here = mine.detach().cpu().contiguous()  # both transports move host memory
        raw = here.reshape(-1).view(torch.uint8)  # as bytes: any dtype (bfloat16 too) travels alike
        node = self._node_gather(raw.numel())
        if node is not None:
            rows = torch.from_numpy(node.gather(raw.numpy())).view(here.dtype)
            return rows.reshape(self.size * here.shape[0], *here.shape[1:]).to(mine.device)
        parts = [torch.empty_like(here) for _ in range(self.size)]
        dist.all_gather(parts, here)
        return torch.cat(parts).to(mine.device)

    def _node_gather(self, nbytes: int) -> NodeGather | None:
        """The shared-memory gather of `nbytes`-byte blocks, or None where the replicas do not
        share a node (decided together, so all of them take the same transport)."""
        if nbytes in self._node_gathers:
            return self._node_gathers[nbytes]
        found = None
        if self.transport == "auto":
            import torch.distributed as dist

            name = [f"gamescale-replicas-{os.getpid()}-{secrets.token_hex(8)}" if self.rank == 0 else None]
            dist.broadcast_object_list(name, src=0)
            node = NodeGather(str(name[0]), self.rank, self.size, nbytes, np.uint8)
            try:
                node.create()
                made = True
            except OSError:
                made = False
            dist.barrier()  # rank 0's mapping exists before anyone opens it
            attached = made and node.attach()
            everyone = [False] * self.size
            dist.all_gather_object(everyone, attached)
            node.seal()  # every rank has opened what it could: the names can go
            if all(everyone):
                found = node
            else:
                node.close()
        self._node_gathers[nbytes] = found
        return found


@functools.lru_cache(maxsize=64)
def slice_bounds(num_rows: int, num_slices: int) -> tuple[int, ...]:
    """Row offsets (K + 1 of them) of K contiguous slices of sizes differing by at most one."""
    if num_rows < num_slices:
        raise ValueError(f"a minibatch of {num_rows} rows cannot make {num_slices} gradient slices")
    return tuple(int(b) for b in np.linspace(0, num_rows, num_slices + 1).round())


@functools.lru_cache(maxsize=64)
def _shares(local: tuple[int, ...], num_rows: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """`[k, 1]`: each slice's share of the minibatch rows (its weight in the sum)."""
    return torch.as_tensor(np.diff(local) / num_rows, dtype=dtype, device=device)[:, None]


EXPLICIT_CHUNK_ROWS = 1 << 16
"""How many minibatch rows `TorchLearner` takes from Arrow and converts at once for a `gradient_fn`."""


def arrow_tensors(batch: pa.RecordBatch, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """A batch's columns as tensors with rows first, as `LearnerSpec.gradient_fn` receives
    them: integer columns as int64 (the index type of `gather`, `index_select` and
    `index_add_`), floating and boolean ones in their own dtype, list columns whose lists are
    all one length as `[rows, length]`."""
    out = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        kind = column.type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            lengths = np.asarray(pc.list_value_length(column).to_numpy(zero_copy_only=False))
            if len(lengths) and (lengths != lengths[0]).any():
                raise ValueError(f"column {name!r} holds lists of several lengths; a gradient_fn needs equal ones")
            values = np.asarray(column.flatten().to_numpy(zero_copy_only=False)).reshape(len(column), -1)
        else:
            values = np.asarray(column.to_numpy(zero_copy_only=False))
        # one copy either way: owned and writable, whatever Arrow lent
        integer = np.issubdtype(values.dtype, np.integer)
        out[name] = torch.from_numpy(values.astype(np.int64) if integer else np.array(values, copy=True)).to(device)
    return out


class TorchLearner:
    """Owns `spec.module_factory()` and its optimizer on `device`; `group` places it among
    data-parallel replicas (every replica holds the same weights after every step)."""

    def __init__(self, spec: LearnerSpec, device: str = "cpu", group: ReplicaGroup | None = None):
        torch.manual_seed(spec.seed)
        self.spec = spec
        self.group = group or ReplicaGroup()
        self.group.slices(spec.gradient_slices)  # fail fast on an uneven split
        self.device = torch.device(device)
        self.module = spec.module_factory().to(self.device)
        # walked once: `Module.parameters()` recurses through the submodules on every call
        self._parameters = list(self.module.parameters())
        if spec.optimizer == "adam":
            self.optimizer = torch.optim.Adam(
                self.module.parameters(), lr=spec.learning_rate, fused=True if spec.fused_adam else None
            )
        elif spec.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.module.parameters(), lr=spec.learning_rate)
        else:
            raise ValueError(f"unknown optimizer {spec.optimizer!r}; use 'adam' or 'sgd'")
        self.num_updates = 0
        # a step sums slice rows (and gathers them from the other replicas) unless it is one
        # slice on one replica
        self._sliced = spec.gradient_slices > 1 or self.group.size > 1
        # kept between steps rather than allocated and first touched on each: this replica's
        # slice rows, the summed gradient, and the parameters' `.grad` views of it
        self._buffers: dict[str, Any] = {}
        self._adam: tuple[Any, ...] | None = None  # see `_direct_adam`

    def update(
        self, batch: pa.RecordBatch, num_steps: int = 1, batch_size: int | None = None, seed: int = 0
    ) -> Metrics:
        """`num_steps` gradient steps on minibatches of `batch_size` rows (all rows if None)."""
        rng = np.random.default_rng(seed)
        self.module.train()
        sampled = batch_size is not None and batch_size < batch.num_rows
        rows_per_step = batch_size if sampled else batch.num_rows
        if self.spec.gradient_fn is not None:
            return self._update_explicit(batch, num_steps, rows_per_step, rng if sampled else None)
        metrics: Metrics = {}
        for step in range(num_steps):
            rows = rng.choice(batch.num_rows, size=rows_per_step, replace=False) if sampled else None
            if self._sliced:  # takes only this replica's rows of the minibatch
                metrics = self._sliced_gradient(batch, rows, (seed, step))
            else:
                metrics = self._whole_gradient(batch if rows is None else batch.take(pa.array(rows)))
            self._step()
        return metrics

    def fit(
        self,
        batch: pa.RecordBatch,
        target_fn: TargetFn,
        seeds: Sequence[int],
        steps_per_round: int,
        batch_size: int | None = None,
    ) -> Metrics:
        """Fitted regression in rounds against a target refreshed from these weights
        (`LearnerHandle.fit`); replicas each compute the same targets from their equal weights."""
        metrics: Metrics = {}
        index = batch.schema.get_field_index("target")
        for seed in seeds:
            target = pa.array(np.asarray(target_fn(self.get_weights(), batch), dtype=np.float32))
            if len(target) != batch.num_rows:
                raise ValueError(f"target_fn gave {len(target)} targets for a batch of {batch.num_rows} rows")
            rows = batch.set_column(index, "target", target) if index >= 0 else batch.append_column("target", target)
            metrics = self.update(rows, steps_per_round, batch_size, int(seed))
        return metrics

    def _step(self) -> None:
        adam = self._direct_adam()
        if adam is None:
            self.optimizer.step()
        else:
            params, exp_avgs, exp_avg_sqs, steps, counter = adam
            group = self.optimizer.param_groups[0]
            beta1, beta2 = group["betas"]
            counter.add_(1)  # every parameter's step count: they are views of it
            torch._fused_adam_(
                params,
                [p.grad for p in params],
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )
        self.num_updates += 1

    def _direct_adam(self) -> tuple[Any, ...] | None:
        """(params, exp_avgs, exp_avg_sqs, steps, counter) to call the fused Adam kernel with
        directly, or None where `optimizer.step()` must run: not fused Adam, its state not
        made yet (the first step makes it), a variant the direct call does not cover, or a
        parameter without a gradient this step. The call is the kernel
        `torch.optim.Adam(fused=True)` runs, with the same arguments (bit-identical, tested);
        on CPU the optimizer's per-step grouping and checks cost 50-70 us against the
        kernel's 26 us on the four-rooms network."""
        if self._adam is not None:
            return self._adam if all(p.grad is not None for p in self._adam[0]) else None
        if self.spec.optimizer != "adam" or not self.spec.fused_adam or len(self.optimizer.param_groups) != 1:
            return None
        group = self.optimizer.param_groups[0]
        variant = (group["amsgrad"], group["maximize"], group["differentiable"], group.get("decoupled_weight_decay"))
        params = [p for p in group["params"] if p.requires_grad]
        states = [self.optimizer.state.get(p) for p in params]
        if any(variant) or not group["fused"] or not params or any(not state for state in states):
            return None
        if len({(p.device, p.dtype) for p in params}) != 1 or any(torch.is_tensor(v) for v in (group["lr"], *group["betas"])):
            return None
        # the per-parameter step counts become views of one tensor: one add counts a step for
        # all (`_foreach_add_` on 0-d CPU tensors costs ~3.5 us each); the state dict saves them alike
        counter = torch.stack([state["step"] for state in states])
        for index, state in enumerate(states):
            state["step"] = counter[index]
        self._adam = (
            params,
            [state["exp_avg"] for state in states],
            [state["exp_avg_sq"] for state in states],
            [state["step"] for state in states],
            counter,
        )
        return self._direct_adam()

    def _update_explicit(
        self, batch: pa.RecordBatch, num_steps: int, rows_per_step: int, rng: np.random.Generator | None
    ) -> Metrics:
        """`update` through `spec.gradient_fn`: the minibatches' rows (this replica's share of
        each) are drawn, taken from Arrow and made tensors a chunk of steps at a time, not per
        step, since on a small network that per-step bookkeeping costs as much as the gradient.
        The draws are the per-step draws of `update`, in the same order."""
        first, stop, local = self._my_part(rows_per_step)
        part = stop - first
        chunk = max(1, EXPLICIT_CHUNK_ROWS // max(part, 1))
        metrics: Metrics = {}
        columns: dict[str, torch.Tensor] = {}
        if rng is None:  # every step uses all rows: one conversion serves them all
            columns = arrow_tensors(batch.slice(first, part), self.device)
        for start in range(0, num_steps, chunk):
            steps = min(chunk, num_steps - start)
            if rng is not None:
                draws = [rng.choice(batch.num_rows, size=rows_per_step, replace=False) for _ in range(steps)]
                taken = np.concatenate([d[first:stop] for d in draws])
                columns = arrow_tensors(batch.take(pa.array(taken)), self.device)
            for j in range(steps):
                view = columns if rng is None else {k: v[j * part : (j + 1) * part] for k, v in columns.items()}
                if self._sliced:
                    metrics = self._gather_slices(*self._slice_rows_explicit(view, local), local, rows_per_step)
                else:
                    grads, values = self.spec.gradient_fn(self.module, view, 1)
                    for p, grad in zip(self._parameters, grads, strict=True):
                        p.grad = grad[0]
                    metrics = {name: float(value[0]) for name, value in values.items()}
                self._step()
        return metrics

    def _whole_gradient(self, minibatch: pa.RecordBatch) -> Metrics:
        """Sets every parameter's `.grad` to the minibatch gradient through `loss_fn` and
        autograd (one slice, one replica)."""
        loss, metrics = self.spec.loss_fn(self.module, minibatch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return {**metrics, "loss": float(loss.detach().cpu())}

    def _seed_torch(self, seed: int) -> None:
        # not torch.manual_seed: it queues a CUDA seeding with a captured stack trace on every
        # call (about 1 ms), more than a small model's whole slice
        torch.default_generator.manual_seed(seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(seed)

    def _sliced_gradient(self, batch: pa.RecordBatch, rows: np.ndarray | None, stream: tuple[int, int]) -> Metrics:
        """Sets every parameter's `.grad` to the row-weighted sum of the slice gradients of the
        minibatch (`batch`'s `rows`, or all of it) through `loss_fn` and autograd; returns the
        row-weighted metrics."""
        num_rows = batch.num_rows if rows is None else len(rows)
        first, stop, local = self._my_part(num_rows)
        part = batch.slice(first, stop - first) if rows is None else batch.take(pa.array(rows[first:stop]))
        mine = self.group.slices(self.spec.gradient_slices)
        names, slice_rows = self._slice_rows_autograd(part, local, mine, self._trained(), stream)
        return self._gather_slices(names, slice_rows, local, num_rows)

    def _my_part(self, num_rows: int) -> tuple[int, int, tuple[int, ...]]:
        """This replica's rows `[first, stop)` of a `num_rows` minibatch, and its slices'
        offsets within them."""
        bounds = slice_bounds(num_rows, self.spec.gradient_slices)
        mine = self.group.slices(self.spec.gradient_slices)
        first = bounds[mine.start]
        return first, bounds[mine.stop], tuple(b - first for b in bounds[mine.start : mine.stop + 1])

    def _trained(self) -> list[torch.Tensor]:
        return [p for p in self._parameters if p.requires_grad]

    def _gather_slices(
        self, names: list[str], slice_rows: torch.Tensor, local: tuple[int, ...], num_rows: int
    ) -> Metrics:
        """Weights this replica's slice rows `[k, gradient entries + loss + metrics]` by their
        share of the `num_rows` minibatch rows, gathers every replica's, and sets `.grad` to
        their sum in slice order (whichever replica computed them)."""
        slice_rows.mul_(_shares(local, num_rows, slice_rows.dtype, slice_rows.device))
        gathered = self.group.gather(slice_rows)
        total = self._buffer("total", gathered.shape[1:], gathered.dtype, gathered.device)
        # a copy, then `+=`: the same sum as `add(g0, g1, out=total)`, but on a 2-core VM that
        # add, reading two replicas' blocks of the shared mapping at once, made each replica's
        # next write into the mapping 4-5x slower (73 against 16 us for 176 KB)
        total.copy_(gathered[0])
        for row in gathered[1:]:  # a left fold in slice order: the same sum for any replica count
            total += row
        params, views, metrics_from = self._gradient_views(total)
        for p, view in zip(params, views, strict=True):  # the next step overwrites `total` after this one's update
            if p.grad is not view:
                p.grad = view
        summary = total[metrics_from:].tolist()
        return {**dict(zip(names, summary[1:], strict=True)), "loss": summary[0]}

    def _gradient_views(self, total: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], int]:
        """The trained parameters, their gradients as views of the summed row `total`, and
        where its loss and metrics start (made once per buffer: two dozen view operations a
        step otherwise)."""
        cached = self._buffers.get("views")
        if cached is None or cached[0] is not total:
            params, views, offset = self._trained(), [], 0
            for p in params:
                views.append(total[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
            cached = self._buffers["views"] = (total, params, views, offset)
        return cached[1], cached[2], cached[3]

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A tensor kept between steps under `name` (remade when its shape, dtype or device changes)."""
        found = self._buffers.get(name)
        if found is None or found.shape != shape or found.dtype != dtype or found.device != device:
            found = self._buffers[name] = torch.empty(shape, dtype=dtype, device=device)
        return found

    def _slice_rows_explicit(
        self, columns: Mapping[str, torch.Tensor], local: tuple[int, ...]
    ) -> tuple[list[str], torch.Tensor]:
        """Rows `[my slices, gradient entries + loss + metrics]` from `gradient_fn`: the
        slices (at row offsets `local` of `columns`) in one call when they are of equal size,
        else one by one (the same values: a slice's result does not depend on its company)."""
        params = self._trained()
        sizes = {b - a for a, b in zip(local[:-1], local[1:], strict=True)}
        calls = [(0, len(local) - 1)] if len(sizes) == 1 else [(j, j + 1) for j in range(len(local) - 1)]
        blocks, names = [], []
        for a, b in calls:
            piece = {k: v[local[a] : local[b]] for k, v in columns.items()}
            grads, values = self.spec.gradient_fn(self.module, piece, b - a)
            by_parameter = dict(zip(self._parameters, grads, strict=True))
            names = sorted(n for n in values if n != "loss")
            like = grads[0]
            columns_out = [torch.as_tensor(values[n], dtype=like.dtype, device=like.device) for n in ["loss", *names]]
            flat = [by_parameter[p].reshape(b - a, -1) for p in params]
            blocks.append([*flat, torch.stack(columns_out, dim=1)])
        like = blocks[0][0]
        width = sum(part.shape[1] for part in blocks[0])
        rows = self._buffer("slice_rows", (len(local) - 1, width), like.dtype, like.device)
        for (a, b), parts in zip(calls, blocks, strict=True):
            torch.cat(parts, dim=1, out=rows[a:b])
        return names, rows

    def _slice_rows_autograd(
        self,
        part: pa.RecordBatch,
        local: tuple[int, ...],
        mine: range,
        params: list[torch.Tensor],
        stream: tuple[int, int],
    ) -> tuple[list[str], torch.Tensor]:
        """Rows as `_slice_rows_explicit`, through `loss_fn` and autograd, a slice at a time."""
        names: list[str] = []
        rows: torch.Tensor | None = None
        for j, k in enumerate(mine):
            piece = part.slice(local[j], local[j + 1] - local[j])
            # torch randomness (dropout) of slice k is the same on whichever replica runs it
            self._seed_torch(int(np.random.SeedSequence([*stream, k]).generate_state(1)[0]))
            loss_tensor, metrics = self.spec.loss_fn(self.module, piece)
            self.optimizer.zero_grad(set_to_none=True)
            loss_tensor.backward()
            flat = [p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1) for p in params]
            names = sorted(metrics)
            values = torch.tensor(
                [float(loss_tensor.detach()), *(float(metrics[n]) for n in names)], dtype=flat[0].dtype
            )
            if rows is None:
                width = sum(f.numel() for f in flat) + len(values)
                rows = torch.empty(len(mine), width, dtype=flat[0].dtype, device=flat[0].device)
            torch.cat([*flat, values.to(flat[0].device)], out=rows[j])
        assert rows is not None
        return names, rows

    @torch.no_grad()
    def infer(self, method: str, inputs: Mapping[str, np.ndarray]) -> Any:
        """`module.<method>(**inputs)` on tensors (no gradients, eval mode), as numpy."""
        fn = getattr(self.module, method, None)
        if method.startswith("_") or not callable(fn):
            raise ValueError(f"the learner's module has no inference method {method!r}")
        was_training = self.module.training
        self.module.eval()
        try:
            out = fn(**{k: torch.as_tensor(np.asarray(v), device=self.device) for k, v in inputs.items()})
        finally:
            self.module.train(was_training)
        return _to_numpy(out)

    def client(self) -> LocalModelClient:
        """A `ModelClient` calling this learner in this process."""
        return LocalModelClient(self)

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.module.state_dict().items()}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        self.module.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()})

    def device_name(self) -> str:
        return str(self.device)

    def save_bytes(self) -> bytes:
        """Module and optimizer state as a torch file of tensors and plain values."""
        buffer = io.BytesIO()
        torch.save(
            {
                "module": self.module.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "num_updates": self.num_updates,
            },
            buffer,
        )
        return buffer.getvalue()

    def load_bytes(self, data: bytes) -> None:
        state = torch.load(io.BytesIO(data), map_location=self.device, weights_only=True)
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._adam = None  # the loaded optimizer state is new tensors
        self.num_updates = int(state["num_updates"])


def _to_numpy(out: Any) -> Any:
    """Tensors (alone, in a dict, tuple or list) as numpy arrays."""
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, dict):
        return {k: _to_numpy(v) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_to_numpy(v) for v in out)
    return out


class LocalModelClient:
    """A `ModelClient` on an in-process `TorchLearner` (no Ray): calls its module directly."""

    def __init__(self, learner: TorchLearner):
        self.learner = learner

    def infer(self, method: str, **inputs: np.ndarray) -> Any:
        return self.learner.infer(method, inputs)
