"""A torch learner: one module, one optimizer, updates from Arrow batches.

This is the in-process learner; `gamescale.framework.learner` hosts the same class in a
Ray actor (on a GPU when the cluster has one). Weights travel as numpy arrays and are
checkpointed as tensors only, so a checkpoint is data, never code.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from gamescale.algorithms.base import LearnerSpec, Metrics


class TorchLearner:
    """Owns `spec.module_factory()` and its optimizer on `device`."""

    def __init__(self, spec: LearnerSpec, device: str = "cpu"):
        torch.manual_seed(spec.seed)
        self.spec = spec
        self.device = torch.device(device)
        self.module = spec.module_factory().to(self.device)
        if spec.optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.module.parameters(), lr=spec.learning_rate)
        elif spec.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.module.parameters(), lr=spec.learning_rate)
        else:
            raise ValueError(f"unknown optimizer {spec.optimizer!r}; use 'adam' or 'sgd'")
        self.num_updates = 0

    def update(
        self, batch: pa.RecordBatch, num_steps: int = 1, batch_size: int | None = None, seed: int = 0
    ) -> Metrics:
        """`num_steps` gradient steps on minibatches of `batch_size` rows (all rows if None)."""
        rng = np.random.default_rng(seed)
        metrics: Metrics = {}
        self.module.train()
        for _ in range(num_steps):
            if batch_size is not None and batch_size < batch.num_rows:
                rows = rng.choice(batch.num_rows, size=batch_size, replace=False)
                minibatch = batch.take(pa.array(rows))
            else:
                minibatch = batch
            loss, metrics = self.spec.loss_fn(self.module, minibatch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.num_updates += 1
        return {**metrics, "loss": float(loss.detach().cpu())}

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
