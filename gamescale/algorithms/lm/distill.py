"""Controlled distillation with teacher hacking (2502.02671): oracle -> teacher -> student.

The lab (`gamescale.envs.lm.distill`) holds the oracle (ground truth) and the teacher
distilled from it. This algorithm distils a student from the teacher with a token-level
divergence over the full vocabulary (forward KL, reverse KL or generalised JSD) at every
completion position, and measures, exactly per token over the vocabulary:

  proxy_distance         = mean per-token KL(teacher || student) on the distillation data
                           the student just trained on (what a practitioner without an
                           oracle watches fall)
  golden_distance        = mean per-token KL(oracle || student) along oracle samples of the
                           held-out prompts
  heldout_proxy_distance = mean per-token KL(teacher || student) along teacher samples of the
                           held-out prompts

(the held-out ones on fixed evaluation sequences, so they carry no sampling noise of
their own).

Batch schema of `generate_shard` (one row per sequence; `L = P + N`):
  tokens            fixed_size_list<int32>[L]       prompt then completion
  teacher_logprobs  fixed_size_list<float32>[N * V] log-softmax of the teacher's logits at
                                                    each completion position, row-major [N, V]
  sampler_logprobs  fixed_size_list<float32>[N]     log-prob of each completion token under
                                                    the model that sampled it
  weights_version   int64                           version of the student weights used (-1: teacher/oracle)

Data regimes: offline (one fixed data set of teacher completions, sampled at iteration 0
and reused for every step) and online (fresh completions every iteration, from the teacher
or, with probability `student_fraction`, from the student). Sampling runs as shard
functions on the sampler workers while the learner trains on the previous batch; student
weights go to the samplers every `sync_every` iterations and each batch carries its lag.

Iteration k: (online) submit the generation of the next batch; train the learner
`steps_per_iteration` Adam steps on minibatches of `batch_size` sequences of the current
batch (offline: of the data set); collect the next batch; evaluate. Randomness: shard
seeds from (run seed, iteration, shard), minibatches from `_purpose_seed(seed, iteration,
1)`; nothing random is kept across steps, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from gamescale.algorithms.base import LearnerSpec, ShardTask, State, StepContext, shard_seed
from gamescale.algorithms.lm.config import DistillConfig
from gamescale.algorithms.lm.losses import divergence, sequence_distance
from gamescale.algorithms.lm.model import CausalTransformer, TransformerConfig, build_model, torch_threads
from gamescale.algorithms.lm.sampling import sample
from gamescale.algorithms.lm.scaling import HackingReport, PowerLaw, detect_teacher_hacking
from gamescale.algorithms.tables import annotate

BATCH_COLUMNS = ("tokens", "teacher_logprobs", "sampler_logprobs", "lag")


def completion_batch(
    lab: Any,
    tokens: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    weights_version: int,
) -> pa.RecordBatch:
    """Arrow batch of sequences `[B, L]` with the teacher's log-distributions attached."""
    P, V = lab.config.prompt_length, lab.vocab_size
    with torch.no_grad():
        teacher_lp = F.log_softmax(lab.teacher(tokens[:, :-1])[:, P - 1 :], dim=-1)
    B, L = tokens.shape
    N = L - P
    return pa.RecordBatch.from_arrays(
        [
            pa.FixedSizeListArray.from_arrays(pa.array(tokens.reshape(-1).numpy().astype(np.int32)), L),
            pa.FixedSizeListArray.from_arrays(pa.array(teacher_lp.reshape(-1).numpy().astype(np.float32)), N * V),
            pa.FixedSizeListArray.from_arrays(pa.array(sampler_logprobs.reshape(-1).numpy().astype(np.float32)), N),
            pa.array(np.full(B, weights_version, dtype=np.int64)),
        ],
        names=["tokens", "teacher_logprobs", "sampler_logprobs", "weights_version"],
    )


def generate_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Shard function: this shard's slice of `shared["prompts"]` `[M, P]` (int array), each
    completed `shared["samples_per_prompt"]` times by `shared["source"]` ("teacher",
    "oracle" or "student" with `shared["student"]` = {"config", "weights", "version"}).

    Prompts are split into contiguous slices over the shards; the draws come from a torch
    generator seeded by the shard's seed, so results do not depend on worker placement.
    """
    with torch_threads(1):
        return _generate(env, shared, task)


def _generate(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    prompts = np.asarray(shared["prompts"])
    repeats = int(shared.get("samples_per_prompt", 1))
    bounds = np.linspace(0, len(prompts), task.num_shards + 1).astype(int)
    mine = torch.as_tensor(prompts[bounds[task.index] : bounds[task.index + 1]], dtype=torch.long)
    mine = mine.repeat_interleave(repeats, dim=0)
    source = shared["source"]
    version = -1
    if source == "student":
        student = shared["student"]
        model = env.student(student["config"], student["weights"])
        version = int(student["version"])
    else:
        model = env.model(source)
    if len(mine) == 0:
        tokens = torch.zeros(0, env.config.context_length, dtype=torch.long)
        logprobs = torch.zeros(0, env.config.completion_length)
    else:
        generator = torch.Generator().manual_seed(task.seed)
        temperature = float(shared.get("temperature", 1.0))
        drawn = sample(model, mine, env.config.completion_length, temperature=temperature, generator=generator)
        tokens, logprobs = drawn.tokens, drawn.logprobs
    return completion_batch(env, tokens, logprobs, version)


def _purpose_seed(seed: int, iteration: int, purpose: int) -> int:
    """A seed for one purpose of one iteration, apart from every shard's stream."""
    return shard_seed(seed, iteration, 1_000_000 + purpose)


def student_factory(
    transformer_json: str,
    seed: int,
    lab_json: str | None = None,
    sft_steps: int = 0,
    sft_batch_size: int = 64,
    sft_learning_rate: float = 3e-3,
) -> CausalTransformer:
    """Module factory of the student learner (bind with functools.partial): a fresh model,
    then `sft_steps` of supervised fine-tuning (cross-entropy on sampled oracle tokens) when
    asked: the student starts, as in the paper's pipeline, from a model tuned on
    ground-truth data. Deterministic in its arguments."""
    model = build_model(TransformerConfig.model_validate_json(transformer_json), seed)
    if sft_steps > 0 and lab_json is not None:
        from gamescale.envs.lm.distill import DistillLabConfig, build_distill_lab

        lab = build_distill_lab(DistillLabConfig.model_validate_json(lab_json))
        optimizer = torch.optim.Adam(model.parameters(), lr=sft_learning_rate)
        generator = torch.Generator().manual_seed(seed + 104729)
        cfg, P = lab.config, lab.config.prompt_length
        for _ in range(sft_steps):
            prompts = torch.randint(0, cfg.vocab_size, (sft_batch_size, P), generator=generator)
            tokens = sample(lab.oracle, prompts, cfg.completion_length, generator=generator).tokens
            logits = model(tokens[:, :-1])[:, P - 1 :]
            loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), tokens[:, P:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model


def distill_loss(
    module: CausalTransformer,
    batch: pa.RecordBatch,
    kind: str,
    beta: float,
    prompt_length: int,
    vocab_size: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Token-level divergence between the teacher distributions shipped in the batch and
    the student's, at every completion position (full vocabulary, every position counts)."""
    device = next(module.parameters()).device
    width = batch.schema.field("tokens").type.list_size
    tokens = torch.as_tensor(batch.column("tokens").values.to_numpy().reshape(-1, width).astype(np.int64))
    teacher = torch.as_tensor(
        np.array(batch.column("teacher_logprobs").values.to_numpy()).reshape(len(tokens), -1, vocab_size)
    )
    tokens, teacher = tokens.to(device), teacher.to(device)
    student_logits = module(tokens[:, :-1])[:, prompt_length - 1 :]
    if student_logits.shape[-1] != teacher.shape[-1]:
        raise ValueError(
            f"student vocabulary {student_logits.shape[-1]} does not match the teacher's {teacher.shape[-1]}"
        )
    loss = divergence(kind, teacher, student_logits, beta=beta)
    return loss, {"distill_loss": float(loss.detach())}


def _arrays_to_batch(data: Mapping[str, np.ndarray]) -> pa.RecordBatch:
    tokens, teacher = np.asarray(data["tokens"]), np.asarray(data["teacher_logprobs"])
    sampler, lag = np.asarray(data["sampler_logprobs"]), np.asarray(data["lag"])
    return pa.RecordBatch.from_arrays(
        [
            pa.FixedSizeListArray.from_arrays(pa.array(tokens.reshape(-1)), tokens.shape[1]),
            pa.FixedSizeListArray.from_arrays(pa.array(teacher.reshape(-1)), teacher.shape[1]),
            pa.FixedSizeListArray.from_arrays(pa.array(sampler.reshape(-1)), sampler.shape[1]),
            pa.array(lag),
        ],
        names=list(BATCH_COLUMNS),
    )


def _batches_to_arrays(batches: list[pa.RecordBatch], learner_version: int) -> dict[str, np.ndarray]:
    table = pa.Table.from_batches(batches).combine_chunks()

    def matrix(name: str) -> np.ndarray:
        column = table.column(name).chunk(0) if table.num_rows else None
        width = table.schema.field(name).type.list_size
        return column.values.to_numpy().reshape(-1, width) if column is not None else np.zeros((0, width))

    versions = table.column("weights_version").to_numpy()
    lag = np.where(versions < 0, 0, learner_version - versions).astype(np.int64)
    return {
        "tokens": matrix("tokens").astype(np.int32),
        "teacher_logprobs": matrix("teacher_logprobs").astype(np.float32),
        "sampler_logprobs": matrix("sampler_logprobs").astype(np.float32),
        "lag": lag,
    }


class TeacherHackingDistillation:
    """Distil a student from the lab's teacher; track proxy and golden distances."""

    def __init__(self, config: DistillConfig, env: Any):
        if not all(hasattr(env, name) for name in ("oracle", "teacher", "eval_prompts")):
            raise ValueError(f"distill needs the distill_lab environment, got {type(env).__name__}")
        self.config = config
        self.lab = env
        lab_cfg = env.config
        self.prompt_length = lab_cfg.prompt_length
        self.transformer = lab_cfg.transformer(config.student)
        self.student = build_model(self.transformer, 0).eval().requires_grad_(False)
        # fixed evaluation sequences: one teacher and one oracle completion per held-out prompt
        g = torch.Generator().manual_seed(lab_cfg.eval_seed + 1)
        self.eval_teacher = sample(env.teacher, env.eval_prompts, lab_cfg.completion_length, generator=g).tokens
        self.eval_oracle = sample(env.oracle, env.eval_prompts, lab_cfg.completion_length, generator=g).tokens
        # the teacher's own distance to the oracle: the floor a perfect copy of the teacher reaches
        self.teacher_golden = float(
            sequence_distance(env.oracle, env.teacher, self.eval_oracle, self.prompt_length).mean()
        )

    # ------------------------------------------------------------------ interface

    def learner_specs(self) -> dict[str, LearnerSpec]:
        c = self.config
        return {
            "student": LearnerSpec(
                module_factory=functools.partial(
                    student_factory,
                    self.transformer.model_dump_json(),
                    c.student_seed,
                    self.lab.config.model_dump_json(),
                    c.student_sft_steps,
                ),
                loss_fn=functools.partial(
                    distill_loss,
                    kind=c.loss,
                    beta=c.jsd_beta,
                    prompt_length=self.prompt_length,
                    vocab_size=self.lab.vocab_size,
                ),
                learning_rate=c.learning_rate,
                seed=c.student_seed,
            )
        }

    def init(self, seed: int) -> State:
        lab_cfg = self.lab.config
        g = torch.Generator().manual_seed(int(_purpose_seed(seed, 0, 0)))
        prompts = torch.randint(0, lab_cfg.vocab_size, (self.config.num_prompts, lab_cfg.prompt_length), generator=g)
        empty = {
            "tokens": np.zeros((0, lab_cfg.context_length), np.int32),
            "teacher_logprobs": np.zeros((0, lab_cfg.completion_length * lab_cfg.vocab_size), np.float32),
            "sampler_logprobs": np.zeros((0, lab_cfg.completion_length), np.float32),
            "lag": np.zeros(0, np.int64),
        }
        return {
            "prompts": prompts.numpy().astype(np.int64),
            "data": empty,
            "sampler_weights": {},
            "sampler_version": -1,
            "learner_version": 0,
            "history": {"step": np.zeros(0), "proxy": np.zeros(0), "golden": np.zeros(0), "heldout_proxy": np.zeros(0)},
        }

    def _generation(self, state: State, ctx: StepContext, rows: int) -> list[dict[str, Any]]:
        """The `shared` payloads (one per source) that generate `rows` completions."""
        c = self.config
        g = np.random.default_rng(_purpose_seed(ctx.seed, ctx.iteration, 2))
        prompts = state["prompts"]
        if c.regime == "offline":
            chosen = np.repeat(prompts, rows // len(prompts), axis=0)
        else:
            chosen = prompts[g.integers(0, len(prompts), size=rows)]
        n_student = int(g.binomial(rows, c.student_fraction)) if c.regime == "online" else 0
        jobs = []
        if rows - n_student > 0:
            jobs.append({"source": "teacher", "prompts": chosen[n_student:]})
        if n_student > 0:
            jobs.append(
                {
                    "source": "student",
                    "prompts": chosen[:n_student],
                    "student": {
                        "config": self.transformer.model_dump(mode="json"),
                        "weights": state["sampler_weights"],
                        "version": int(state["sampler_version"]),
                    },
                }
            )
        return jobs

    def _submit(self, jobs: list[dict], ctx: StepContext) -> list:
        pending = []
        for stream, shared in enumerate(jobs):
            tasks = [dataclasses.replace(t, seed=shard_seed(t.seed, stream, 0)) for t in ctx.shard_tasks()]
            pending.append(ctx.shards.submit(generate_shard, tasks, shared))
        return pending

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        with torch_threads(1):
            return self._step(state, ctx)

    def _step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        c = self.config
        learner = ctx.learners["student"]
        state = dict(state)
        rows_online = c.batch_size * c.steps_per_iteration
        if c.regime == "online" and c.student_fraction > 0 and ctx.iteration % c.sync_every == 0:
            state["sampler_weights"] = learner.get_weights()
            state["sampler_version"] = int(state["learner_version"])
        if len(state["data"]["tokens"]) == 0:  # first iteration: the data set, or the first online batch
            rows = c.dataset_size if c.regime == "offline" else rows_online
            batches = [b for p in self._submit(self._generation(state, ctx, rows), ctx) for b in p.result()]
            state["data"] = _batches_to_arrays(batches, int(state["learner_version"]))
        data = state["data"]
        pending = []
        if c.regime == "online":  # the next batch is sampled while the learner trains on this one
            pending = self._submit(self._generation(state, ctx, rows_online), ctx)
        metrics = learner.update(
            _arrays_to_batch(data),
            num_steps=c.steps_per_iteration,
            batch_size=min(c.batch_size, len(data["tokens"])),
            seed=_purpose_seed(ctx.seed, ctx.iteration, 1),
        )
        state["learner_version"] = int(state["learner_version"]) + 1
        lag = float(np.mean(data["lag"])) if len(data["lag"]) else 0.0
        if pending:
            batches = [b for p in pending for b in p.result()]
            state["data"] = _batches_to_arrays(batches, int(state["learner_version"]))
        weights = learner.get_weights()
        golden, heldout_proxy = self.evaluate(weights)
        proxy = self.train_distance(data)
        step_count = float((ctx.iteration + 1) * c.steps_per_iteration)
        history = state["history"]
        state["history"] = {
            "step": np.append(history["step"], step_count),
            "proxy": np.append(history["proxy"], proxy),
            "golden": np.append(history["golden"], golden),
            "heldout_proxy": np.append(history["heldout_proxy"], heldout_proxy),
        }
        report = self.hacking(state)
        return state, {
            "proxy_distance": proxy,
            "golden_distance": golden,
            "heldout_proxy_distance": heldout_proxy,
            "distill_loss": float(metrics.get("distill_loss", metrics.get("loss", np.nan))),
            "gradient_steps": step_count,
            "lag": lag,
            "hacking_detected": float(report.detected),
        }

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, weights: Mapping[str, np.ndarray]) -> tuple[float, float]:
        """(golden, held-out proxy) distances of a student holding `weights`, on the
        held-out prompts (loads the weights into `self.student`)."""
        self.student.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in weights.items()})
        P = self.prompt_length
        with torch.no_grad():
            golden = sequence_distance(self.lab.oracle, self.student, self.eval_oracle, P)
            heldout = sequence_distance(self.lab.teacher, self.student, self.eval_teacher, P)
        return float(golden.mean()), float(heldout.mean())

    def train_distance(self, data: Mapping[str, np.ndarray], max_rows: int = 256) -> float:
        """The proxy: mean per-token KL(teacher || student), exact over the vocabulary, on
        (the first `max_rows` of) the data the learner just trained on; call after
        `evaluate` loaded the student's weights."""
        tokens = torch.as_tensor(np.asarray(data["tokens"][:max_rows], dtype=np.int64))
        if len(tokens) == 0:
            return float("nan")
        teacher = torch.as_tensor(np.asarray(data["teacher_logprobs"][:max_rows])).reshape(
            len(tokens), -1, self.lab.vocab_size
        )
        with torch.no_grad():
            student = self.student(tokens[:, :-1])[:, self.prompt_length - 1 :]
            return float(divergence("forward_kl", teacher, student))

    def hacking(self, state: State) -> HackingReport:
        h = state["history"]
        return detect_teacher_hacking(
            h["step"],
            h["proxy"],
            h["golden"],
            min_rise=self.config.hacking_min_rise,
            fit_start=self.config.law_fit_start,
            smooth=self.config.hacking_smooth,
        )

    def summary(self, state: State) -> dict[str, Any]:
        h = state["history"]
        if len(h["step"]) == 0:
            return {}
        r = self.hacking(state)
        law = {name: _law_fields(fit) for name, fit in (("proxy_law", r.proxy_law), ("golden_law", r.golden_law))}
        return {
            "hacking_detected": r.detected,
            "hacking_onset_step": r.onset_step,
            "golden_min_step": r.golden_min_step,
            "golden_min": float(np.min(h["golden"])),
            "golden_final": float(h["golden"][-1]),
            "golden_rise": r.golden_rise,
            "proxy_final": float(h["proxy"][-1]),
            "proxy_drop_after_onset": r.proxy_drop_after_onset,
            "proxy_departure_step": r.proxy_departure_step,
            "teacher_golden_distance": self.teacher_golden,
            **law,
        }

    def tables(self, state: State) -> dict[str, pa.Table]:
        """`distill_curves`: step, proxy_distance, golden_distance and the fitted power laws
        at each step (proxy_law, golden_law; NaN where no law was fitted), annotated with the
        laws' parameters (a, b, r2, t_start, t_end, or None), the onset of teacher hacking (None unless
        detected), KL(oracle || teacher) and a title. The report draws
        plots/distill_loglog.png from it."""
        h = state["history"]
        columns = {"step": h["step"], "proxy_distance": h["proxy"], "golden_distance": h["golden"]}
        notes: dict[str, Any] = {
            "title": f"{self.config.regime} distillation ({self.config.loss})",
            "teacher_golden_distance": float(self.teacher_golden),
        }
        if len(h["step"]):
            r = self.hacking(state)
            for name, fit in (("proxy_law", r.proxy_law), ("golden_law", r.golden_law)):
                columns[name] = fit(h["step"]) if fit is not None else np.full(len(h["step"]), np.nan)
                notes[name] = _law_fields(fit)
            detected = r.detected and r.onset_step is not None
            notes["hacking_onset_step"] = float(r.onset_step) if detected else None
        return {"distill_curves": annotate(pa.table(columns), **notes)}


def _law_fields(fit: PowerLaw | None) -> dict[str, float] | None:
    """A fitted power law as JSON fields (None where none was fitted)."""
    if fit is None:
        return None
    return {key: float(getattr(fit, key)) for key in ("a", "b", "r2", "t_start", "t_end")}
