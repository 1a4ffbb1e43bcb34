"""`music_cfg_distill`: CFG distillation with a diversity reward, on actors (arXiv 2410.06084).

One iteration, for every student (one learner per `beta`):

1. the sampler actors (`ctx.shards`) draw `prompts_per_iteration` train prompts and
   `generations_per_prompt` generations of each from the student's latest weights (one
   forward pass per token: no CFG);
2. meanwhile the learners train on the previous iteration's scored batch:
   KL(p_cfg || p_student) per completion token (the frozen base model run twice, with and
   without the prompt, at guidance scale s) + beta * REINFORCE on the diversity reward
   (per token, leave-one-out baseline within the prompt's group), so every batch is one
   update stale, as in the BOND lab;
3. the reward actors (`ctx.pools["reward"]`, their own pool) score the new generations:
   quality = matcher cosine(prompt, music) + `likelihood_weight` * the CFG teacher's mean
   per-token log-likelihood; diversity reward of each generation = its mean embedding
   dissimilarity (1 - cos, matcher's music encoder) to the other generations of its
   prompt. The payload is cut into `ctx.num_shards` pieces of whole prompt groups, so the
   numbers do not depend on how many reward actors ran them.

`init` trains, in the driver, the base model (condition dropout) and the matcher
(contrastive). At the end (`summary` / `tables` / `files`) every model of the
quality-diversity picture generates for held-out prompts in this process: base (scale 1),
CFG (scale s, two passes per token), each student, and interpolations between the beta = 0
and the largest-beta student.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn

from gamescale.algorithms.base import LearnerSpec, Metrics, PoolSpec, ShardTask, State, StepContext, make_shard_tasks
from gamescale.algorithms.lm.losses import forward_kl
from gamescale.algorithms.lm.model import torch_threads
from gamescale.algorithms.lm.sampling import sample
from gamescale.algorithms.music.conditional import (
    PROMPT_TOKENS,
    build_conditional_model,
    guided_logits,
    sample_cfg,
    sequence_loss,
    training_batch,
)
from gamescale.algorithms.music.config import ConditionalMusicConfig, MatcherConfig, MusicCfgDistillConfig
from gamescale.algorithms.music.distill import completion_mask, diversity_reward, interpolate_weights
from gamescale.algorithms.music.matching import (
    Matcher,
    build_matcher,
    match_scores,
    music_window,
    piece_windows,
    retrieval_accuracy,
    train_matcher,
)
from gamescale.algorithms.music.tables import piano_roll_table, quality_diversity_table
from gamescale.envs.music import vocab as V
from gamescale.envs.music.corpus import MusicCorpus
from gamescale.envs.music.tokens import detokenize


def _single_threaded(fn: Any) -> Any:
    """Tiny models only lose from extra torch threads on a busy machine."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch_threads(1):
            return fn(*args, **kwargs)

    return wrapper


def _seed(*words: int) -> int:
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0])


def _weights(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def _load(module: nn.Module, weights: Mapping[str, np.ndarray]) -> nn.Module:
    module.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in weights.items()})
    return module


def prompt_rows(corpus: MusicCorpus) -> np.ndarray:
    """`[N, PROMPT_LENGTH]` the attribute tokens of every piece's prompt."""
    return np.array([p.tokens() for p in corpus.prompts()], dtype=np.int64).reshape(-1, V.PROMPT_LENGTH)


def prompt_text(tokens: np.ndarray) -> str:
    """The text form of `PROMPT_LENGTH` attribute tokens (NULL slots left out)."""
    values = [None if t == V.NULL else V.describe_token(int(t)).split("=", 1)[1] for t in tokens]
    return V.Prompt(tuple(values)).text()


def with_bos(prompts: np.ndarray) -> torch.Tensor:
    """`[B, PROMPT_TOKENS]`: attribute tokens then BOS (what generation starts from)."""
    prompts = torch.as_tensor(np.asarray(prompts), dtype=torch.long)
    return torch.cat((prompts, torch.full((prompts.shape[0], 1), V.BOS, dtype=torch.long)), dim=1)


# ---------------------------------------------------------------- the learner's module and loss


class TeacherStudent(nn.Module):
    """The student being trained and the frozen CFG teacher (the base model) it is distilled
    from, in one module so the learner holds both; only `student` has trainable weights."""

    def __init__(self, config: ConditionalMusicConfig):
        super().__init__()
        self.student = build_conditional_model(config)
        self.teacher = build_conditional_model(config)
        self.teacher.requires_grad_(False)


def build_teacher_student(config: ConditionalMusicConfig) -> TeacherStudent:
    """Module factory of every student's learner (its weights are set from the base model
    at the first step)."""
    return TeacherStudent(config)


def student_loss(
    module: TeacherStudent, batch: pa.RecordBatch, beta: float, guidance_scale: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """KL(p_cfg || p_student) per completion token + beta * the per-token REINFORCE loss of
    the diversity reward. Columns: `tokens` (list<int32>, prompt + BOS + completion),
    `advantage` (float64: diversity reward minus the mean of the other generations of the
    same prompt)."""
    column = batch.column("tokens")
    width = len(column.flatten()) // max(batch.num_rows, 1)
    device = module.student.head.weight.device
    tokens = torch.as_tensor(_rows(batch.column("tokens"), width), device=device)
    mask = completion_mask(tokens, PROMPT_TOKENS)
    with torch.no_grad():
        target = guided_logits(module.teacher, tokens, guidance_scale)
    logits = module.student(tokens[:, :-1])
    kl = forward_kl(target, logits, mask)
    token_logprob = F.log_softmax(logits, dim=-1).gather(2, tokens[:, 1:, None]).squeeze(2)
    counts = mask.sum(dim=1).clamp_min(1)
    logprob = (token_logprob * mask).sum(dim=1) / counts  # per token, as the KL
    advantage = torch.as_tensor(np.array(batch.column("advantage").to_numpy()), device=device, dtype=torch.float32)
    policy_gradient = -(advantage * logprob).mean()
    loss = kl + beta * policy_gradient if beta > 0 else kl
    return loss, {"distill_kl": float(kl.detach()), "policy_gradient": float(policy_gradient.detach())}


# ---------------------------------------------------------------- shard functions (actors)


_MODELS: dict[Any, nn.Module] = {}


def _model(kind: str, config: Any, weights: Mapping[str, np.ndarray], slot: str) -> nn.Module:
    """A model of this process, built once per (kind, config, slot), with `weights` loaded."""
    key = (kind, config, slot)
    model = _MODELS.get(key)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            model = build_conditional_model(config) if kind == "music" else build_matcher(config, 0)
        model.eval()
        _MODELS[key] = model
    return _load(model, weights)


def _share(total: int, task: ShardTask) -> tuple[int, int]:
    """(first, count) of this shard's part of `total` items."""
    base, extra = divmod(total, task.num_shards)
    first = task.index * base + min(task.index, extra)
    return first, base + (1 if task.index < extra else 0)


def _list_column(rows: np.ndarray) -> pa.Array:
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    offsets = np.arange(rows.shape[0] + 1, dtype=np.int32) * rows.shape[1]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows.reshape(-1), pa.int32()))


def _rows(column: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.int64).reshape(-1, width)


@_single_threaded
def generate_shard(env: MusicCorpus, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Sampler shard: this shard's share of the iteration's prompts (drawn from the train
    split, the same for every student) and `generations` samples of each from every student.

    `shared = {"model": ConditionalMusicConfig, "students": {name: weights}, "prompts": n,
    "generations": G, "completion_length": T}`. Rows: one per (student, prompt, generation),
    in that order; `group` numbers the prompt within the iteration (all shards)."""
    config: ConditionalMusicConfig = shared["model"]
    first, count = _share(int(shared["prompts"]), task)
    table = prompt_rows(env.split("train"))
    chooser = torch.Generator().manual_seed(_seed(task.seed, 0))
    chosen = torch.randint(len(table), (count,), generator=chooser).numpy()
    groups = int(shared["generations"])
    prompts = with_bos(table[chosen]).repeat_interleave(groups, dim=0)
    names, tokens = [], []
    for index, (name, weights) in enumerate(sorted(shared["students"].items())):
        generator = torch.Generator().manual_seed(_seed(task.seed, 1, index))
        student = _model("music", config, weights, "student")
        drawn = sample(student, prompts, int(shared["completion_length"]), config.temperature, config.top_k,
                       generator=generator)
        names += [name] * len(prompts)
        tokens.append(drawn.tokens.numpy())
    group = np.tile(np.repeat(np.arange(first, first + count), groups), len(shared["students"]))
    return pa.RecordBatch.from_pydict({
        "student": pa.array(names, pa.string()),
        "group": pa.array(group.astype(np.int64)),
        "tokens": _list_column(np.concatenate(tokens) if tokens else np.zeros((0, 1), np.int64)),
    })


@torch.no_grad()
def score_generations(
    matcher: Matcher,
    teacher: nn.Module,
    tokens: torch.Tensor,
    groups: np.ndarray,
    guidance_scale: float,
    likelihood_weight: float,
) -> dict[str, np.ndarray]:
    """Scores of generations `tokens [M, P + T]` (prompt, BOS, completion) whose prompt
    groups are `groups [M]` (each group >= 2 rows): `match` (matcher cosine), `loglik` (the
    CFG teacher's mean per-token log-likelihood of the completion), `quality` = match +
    likelihood_weight * loglik, `diversity` (each row's diversity reward in its group)."""
    music = music_window(tokens[:, PROMPT_TOKENS - 1 :], matcher.config.music_tokens)
    match = match_scores(matcher, tokens[:, : V.PROMPT_LENGTH], music)
    mask = completion_mask(tokens, PROMPT_TOKENS)
    guided = F.log_softmax(guided_logits(teacher, tokens, guidance_scale), dim=-1)
    token_ll = guided.gather(2, tokens[:, 1:, None]).squeeze(2)
    loglik = (token_ll * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)
    embeddings = matcher.embed_music(music)
    diversity = torch.zeros(len(tokens))
    for group in np.unique(groups):
        rows = torch.as_tensor(np.flatnonzero(groups == group))
        diversity[rows] = diversity_reward(embeddings[rows])
    return {
        "match": match.double().numpy(),
        "loglik": loglik.double().numpy(),
        "quality": (match + likelihood_weight * loglik).double().numpy(),
        "diversity": diversity.double().numpy(),
    }


@_single_threaded
def score_shard(env: MusicCorpus, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Reward shard: scores of `task.payload = {"tokens": [M, P + T], "groups": [M]}` under
    `shared = {"model", "teacher", "matcher_config", "matcher", "guidance_scale",
    "likelihood_weight"}` (columns match, loglik, quality, diversity)."""
    tokens = torch.as_tensor(np.asarray(task.payload["tokens"], dtype=np.int64))
    if len(tokens) == 0:
        return pa.RecordBatch.from_pydict({k: pa.array([], pa.float64()) for k in ("match", "loglik", "quality",
                                                                               "diversity")})
    teacher = _model("music", shared["model"], shared["teacher"], "teacher")
    matcher = _model("matcher", shared["matcher_config"], shared["matcher"], "matcher")
    scores = score_generations(matcher, teacher, tokens, np.asarray(task.payload["groups"]),
                               float(shared["guidance_scale"]), float(shared["likelihood_weight"]))
    return pa.RecordBatch.from_pydict({k: pa.array(v, pa.float64()) for k, v in scores.items()})


def leave_one_out_advantage(rewards: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """`[M]` each reward minus the mean of the other rewards of its group (unbiased baseline)."""
    out = np.zeros(len(rewards))
    for group in np.unique(groups):
        rows = groups == group
        values = rewards[rows]
        out[rows] = values - (values.sum() - values) / max(len(values) - 1, 1)
    return out


# ---------------------------------------------------------------- training the base model and matcher


def train_base_model(config: ConditionalMusicConfig, pieces: list[np.ndarray], prompts: list[V.Prompt], steps: int,
                     seed: int) -> tuple[nn.Module, list[float]]:
    """The base (teacher) model trained with condition dropout; (model, loss per step)."""
    model = build_conditional_model(config, seed=_seed(seed, 0xBA5E) % (2**31))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(_seed(seed, 0xBA5E, 1))
    losses = []
    model.train()
    for _ in range(steps):
        rows = torch.randint(len(pieces), (min(config.batch_size, len(pieces)),), generator=generator).tolist()
        tokens, mask = training_batch([pieces[r] for r in rows], [prompts[r] for r in rows], config.context_length,
                                      config.condition_dropout, config.attribute_dropout, generator)
        loss = sequence_loss(model, tokens, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return model.eval(), losses


@torch.no_grad()
def heldout_nll(model: nn.Module, config: ConditionalMusicConfig, pieces: list[np.ndarray],
                prompts: list[V.Prompt], conditional: bool) -> float:
    """Mean per-token NLL of held-out pieces given their prompts (or NULL prompts)."""
    tokens, mask = training_batch(pieces, prompts, config.context_length, 0.0 if conditional else 1.0, 0.0,
                                  torch.Generator().manual_seed(0))
    return float(sequence_loss(model, tokens, mask))


@torch.no_grad()
def kl_to_teacher(model: nn.Module, teacher: nn.Module, tokens: torch.Tensor, guidance_scale: float) -> float:
    """Mean per-token KL(p_cfg-teacher || p_model) on `tokens` (real held-out openings)."""
    mask = completion_mask(tokens, PROMPT_TOKENS)
    return float(forward_kl(guided_logits(teacher, tokens, guidance_scale), model(tokens[:, :-1]), mask))


# ---------------------------------------------------------------- the algorithm


@dataclass(frozen=True)
class Student:
    name: str
    beta: float


def student_name(beta: float) -> str:
    return f"beta_{beta:g}"


def _synth(config: MusicCfgDistillConfig) -> tuple[Any, str]:
    """The FluidSynth to render WAV with (or None) and a line for summary.json saying which."""
    from gamescale.envs.music.audio import AudioError, find_synth

    if config.wav is False:
        return None, "no WAV: algorithm.wav is false"
    try:
        synth = find_synth(config.soundfont)
    except AudioError as err:  # wav: true was checked with the config
        return None, f"no WAV: {err}"
    return synth, f"WAV rendered by {synth.binary} with {synth.soundfont} at {synth.sample_rate} Hz"


class MusicCfgDistill:
    """CFG distillation with a diversity reward (see the module docstring).

    Learners: one `TeacherStudent` per beta (`beta_<b>`). Pools: `reward`
    (`reward_workers` actors of `reward_cpus` CPU each). State: `iteration`, `base` and
    `matcher` (weights), `sampler` {student: weights the samplers use}, `loaded` (learners
    hold the base weights), `pending` {student: {tokens, advantage} or empty}, `history`
    {student: {quality, diversity}} per iteration, and scalar facts of `init`.
    """

    def __init__(self, config: MusicCfgDistillConfig, env: MusicCorpus):
        if not isinstance(env, MusicCorpus):
            raise ValueError(f"music_cfg_distill needs the music_corpus environment, got {type(env).__name__}")
        self.config = config
        self.corpus = env
        self.students = [Student(student_name(b), float(b)) for b in config.betas]
        train, heldout = env.split("train"), env.split("heldout")
        if len(train) < 2:
            raise ValueError(f"music_cfg_distill needs at least 2 train pieces, the corpus has {len(train)}")
        self.train, self.heldout = train, heldout if len(heldout) else train
        self._evaluation: tuple[int, dict[str, Any]] | None = None
        self.synth, self.audio = _synth(config)

    # -- interface

    def learner_specs(self) -> dict[str, LearnerSpec]:
        cfg = self.config
        return {
            s.name: LearnerSpec(
                functools.partial(build_teacher_student, cfg.model),
                functools.partial(student_loss, beta=s.beta, guidance_scale=cfg.model.guidance_scale),
                cfg.learning_rate,
                "adam",
                seed=i,
            )
            for i, s in enumerate(self.students)
        }

    def pool_specs(self) -> dict[str, PoolSpec]:
        return {"reward": PoolSpec(workers=self.config.reward_workers, cpus=self.config.reward_cpus)}

    @_single_threaded
    def init(self, seed: int) -> State:
        cfg = self.config
        pieces, prompts = self.train.token_lists(), self.train.prompts()
        base, base_losses = train_base_model(cfg.model, pieces, prompts, cfg.base_steps, seed)
        held_pieces, held_prompts = self.heldout.token_lists(), self.heldout.prompts()
        length = cfg.matcher.music_tokens
        matcher, matcher_losses = train_matcher(cfg.matcher, piece_windows(pieces, length),
                                                torch.as_tensor(prompt_rows(self.train)), _seed(seed, 0x3A7C) % 2**31)
        weights = _weights(base)
        return {
            "iteration": 0,
            "base": weights,
            "matcher": _weights(matcher),
            "sampler": {s.name: {k: v.copy() for k, v in weights.items()} for s in self.students},
            "loaded": False,
            "pending": {s.name: {} for s in self.students},
            "history": {s.name: {"quality": np.zeros(0), "diversity": np.zeros(0)} for s in self.students},
            "facts": {
                "base_final_loss": float(np.mean(base_losses[-10:])) if base_losses else float("nan"),
                "base_heldout_nll_conditional": heldout_nll(base, cfg.model, held_pieces, held_prompts, True),
                "base_heldout_nll_unconditional": heldout_nll(base, cfg.model, held_pieces, held_prompts, False),
                "matcher_final_loss": float(np.mean(matcher_losses[-10:])) if matcher_losses else float("nan"),
                "matcher_train_accuracy": retrieval_accuracy(matcher, torch.as_tensor(prompt_rows(self.train)),
                                                             piece_windows(pieces, length)),
                "matcher_heldout_accuracy": retrieval_accuracy(matcher, torch.as_tensor(prompt_rows(self.heldout)),
                                                               piece_windows(held_pieces, length)),
                "heldout_distinct_prompts": int(len(np.unique(prompt_rows(self.heldout), axis=0))),
            },
        }

    @_single_threaded
    def step(self, state: State, ctx: StepContext) -> tuple[State, Metrics]:
        cfg = self.config
        if not state["loaded"]:  # every student starts at the base model; the teacher is the base model
            both = {f"{part}.{k}": v for part in ("student", "teacher") for k, v in state["base"].items()}
            for s in self.students:
                ctx.learners[s.name].set_weights(both)
        shared = {
            "model": cfg.model,
            "students": state["sampler"],
            "prompts": cfg.prompts_per_iteration,
            "generations": cfg.generations_per_prompt,
            "completion_length": cfg.completion_length,
        }
        pending = ctx.shards.submit(generate_shard, ctx.shard_tasks(), shared)

        # The learners train on the previous iteration's scored batch while the samplers generate.
        metrics: Metrics = {}
        for i, s in enumerate(self.students):
            columns = state["pending"][s.name]
            if not columns:
                continue
            batch = pa.RecordBatch.from_pydict({
                "tokens": _list_column(columns["tokens"]),
                "advantage": pa.array(np.asarray(columns["advantage"], dtype=np.float64)),
            })
            learned = ctx.learners[s.name].update(batch, cfg.updates_per_iteration, None,
                                                  _seed(ctx.seed, ctx.iteration, 11, i))
            metrics[f"{s.name}.loss"] = float(learned["loss"])
            metrics[f"{s.name}.distill_kl"] = float(learned["distill_kl"])

        table = pa.Table.from_batches(pending.result())
        scored = self._score(ctx, table, state)
        names = np.asarray(table.column("student").to_pylist())
        tokens = _rows(table.column("tokens"), PROMPT_TOKENS + cfg.completion_length)
        groups = table.column("group").to_numpy()
        new_pending, history = {}, {}
        for s in self.students:
            rows = np.flatnonzero(names == s.name)
            new_pending[s.name] = {
                "tokens": tokens[rows],
                "advantage": leave_one_out_advantage(scored["diversity"][rows], groups[rows]),
            }
            for key in ("quality", "diversity", "match", "loglik"):
                metrics[f"{s.name}.{key}"] = float(np.mean(scored[key][rows]))
            h = state["history"][s.name]
            history[s.name] = {
                "quality": np.append(h["quality"], metrics[f"{s.name}.quality"]),
                "diversity": np.append(h["diversity"], metrics[f"{s.name}.diversity"]),
            }
        sampler = {s.name: self._student_weights(ctx.learners[s.name].get_weights()) for s in self.students}
        # headline: the largest-beta student
        top = max(self.students, key=lambda s: s.beta).name
        for key in ("quality", "diversity", "distill_kl"):
            if f"{top}.{key}" in metrics:
                metrics[key] = metrics[f"{top}.{key}"]
        new_state = {
            **state,
            "iteration": int(state["iteration"]) + 1,
            "loaded": True,
            "sampler": sampler,
            "pending": new_pending,
            "history": history,
        }
        return new_state, metrics

    @staticmethod
    def _student_weights(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k[len("student."):]: np.array(v) for k, v in weights.items() if k.startswith("student.")}

    def _score(self, ctx: StepContext, table: pa.Table, state: State) -> dict[str, np.ndarray]:
        """Scores of every generation, on the reward pool: the rows are cut into
        `ctx.num_shards` parts of whole (student, prompt) groups, in row order."""
        cfg = self.config
        tokens = _rows(table.column("tokens"), PROMPT_TOKENS + cfg.completion_length)
        names = table.column("student").to_pylist()
        groups = table.column("group").to_numpy()
        ids = np.unique(np.array([f"{n}/{g}" for n, g in zip(names, groups, strict=True)]), return_inverse=True)[1]
        # each student's generations of one prompt are contiguous (see generate_shard)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        parts = np.array_split(starts, max(ctx.num_shards, 1))
        bounds = [int(p[0]) if len(p) else len(ids) for p in parts] + [len(ids)]
        payloads = [{"tokens": tokens[a:b].astype(np.int32), "groups": ids[a:b]} for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        tasks = make_shard_tasks(ctx.seed, ctx.iteration, len(payloads), payloads=payloads)
        shared = {
            "model": cfg.model,
            "teacher": state["base"],
            "matcher_config": cfg.matcher,
            "matcher": state["matcher"],
            "guidance_scale": cfg.model.guidance_scale,
            "likelihood_weight": cfg.likelihood_weight,
        }
        runner = ctx.pools.get("reward", ctx.shards)
        scored = pa.Table.from_batches(runner.map(score_shard, tasks, shared))
        return {k: scored.column(k).to_numpy() for k in scored.column_names}

    # -- end of a run: the quality-diversity evaluation

    @_single_threaded
    def evaluate(self, state: State) -> dict[str, Any]:
        """Every model of the picture on `eval_prompts` held-out prompts x
        `generations_per_prompt` (the same draws' random numbers for each model): quality,
        diversity, seconds per sample, KL to the CFG teacher on held-out real openings, and
        the tokens of its generations. Computed once per iteration count."""
        if self._evaluation is not None and self._evaluation[0] == int(state["iteration"]):
            return self._evaluation[1]
        cfg = self.config
        s = cfg.model.guidance_scale
        teacher = _load(build_conditional_model(cfg.model), state["base"]).eval()
        matcher = _load(build_matcher(cfg.matcher, 0), state["matcher"]).eval()
        if cfg.prompts:
            table = np.array([V.parse_prompt(p).tokens() for p in cfg.prompts], dtype=np.int64)
        else:
            table = prompt_rows(self.heldout)
        chosen = table[np.arange(cfg.eval_prompts) % len(table)]
        G, T = cfg.generations_per_prompt, cfg.completion_length
        prompts = with_bos(chosen).repeat_interleave(G, dim=0)
        groups = np.repeat(np.arange(cfg.eval_prompts), G)
        pieces = self.heldout.token_lists()
        real, _ = training_batch(pieces, self.heldout.prompts(), PROMPT_TOKENS + T, 0.0, 0.0,
                                 torch.Generator().manual_seed(0))

        models: list[dict[str, Any]] = [
            {"model": "base", "kind": "base", "beta": None, "mix": None, "weights": state["base"], "scale": 1.0},
            {"model": f"cfg_{s:g}", "kind": "cfg", "beta": None, "mix": None, "weights": state["base"], "scale": s},
        ]
        for st in self.students:
            models.append({"model": st.name, "kind": "distilled", "beta": st.beta, "mix": None,
                           "weights": state["sampler"][st.name], "scale": None})
        if cfg.mixes:
            low = {k: torch.as_tensor(np.array(v)) for k, v in state["sampler"][student_name(0.0)].items()}
            high_beta = max(cfg.betas)
            high = {k: torch.as_tensor(np.array(v)) for k, v in state["sampler"][student_name(high_beta)].items()}
            for mix in cfg.mixes:
                mixed = {k: v.numpy() for k, v in interpolate_weights(low, high, mix).items()}
                models.append({"model": f"mix_{mix:g}", "kind": "interpolated", "beta": high_beta, "mix": float(mix),
                               "weights": mixed, "scale": None})
        rows, generations = [], {}
        for spec in models:
            model = _load(build_conditional_model(cfg.model), spec["weights"]).eval()
            guided = spec["scale"] is not None and spec["scale"] != 1.0

            def draw(model=model, guided=guided, scale=spec["scale"]):
                generator = torch.Generator().manual_seed(_seed(state["iteration"], 0xE7A1))
                if guided:
                    return sample_cfg(model, prompts, T, scale, cfg.model.temperature, cfg.model.top_k,
                                      generator=generator)
                return sample(model, prompts, T, cfg.model.temperature, cfg.model.top_k, generator=generator)

            # the same draws twice; the faster one times it (a busy machine only adds time)
            timings = []
            for _ in range(2):
                start = time.perf_counter()
                drawn = draw()
                timings.append(time.perf_counter() - start)
            seconds = min(timings) / len(prompts)
            scores = score_generations(matcher, teacher, drawn.tokens, groups, s, cfg.likelihood_weight)
            kl = 0.0 if spec["kind"] == "cfg" else kl_to_teacher(model, teacher, real, s)
            group_diversity = np.array([scores["diversity"][groups == g].mean() for g in np.unique(groups)])
            rows.append({
                "model": spec["model"], "kind": spec["kind"], "beta": spec["beta"], "mix": spec["mix"],
                "quality": float(scores["quality"].mean()), "diversity": float(scores["diversity"].mean()),
                "quality_se": float(scores["quality"].std(ddof=1) / np.sqrt(len(scores["quality"]))),
                "diversity_se": float(group_diversity.std(ddof=1) / np.sqrt(len(group_diversity)))
                if len(group_diversity) > 1 else None,
                "seconds_per_sample": float(seconds), "match": float(scores["match"].mean()),
                "loglik": float(scores["loglik"].mean()), "kl_to_cfg": float(kl),
            })
            generations[spec["model"]] = drawn.tokens.numpy()
        result = {"rows": rows, "generations": generations, "prompts": [prompt_text(row) for row in chosen]}
        self._evaluation = (int(state["iteration"]), result)
        return result

    def summary(self, state: State) -> dict[str, Any]:
        evaluation = self.evaluate(state)
        rows = evaluation["rows"]
        by_kind = {r["kind"]: r for r in rows}
        distilled = [r for r in rows if r["kind"] == "distilled"]
        cost = {
            "cfg_seconds_per_sample": by_kind["cfg"]["seconds_per_sample"],
            "distilled_seconds_per_sample": float(np.mean([r["seconds_per_sample"] for r in distilled])),
        }
        cost["cfg_over_distilled"] = cost["cfg_seconds_per_sample"] / max(cost["distilled_seconds_per_sample"], 1e-12)
        return {
            **{k: float(v) if isinstance(v, float) else v for k, v in state["facts"].items()},
            "likelihood_weight": self.config.likelihood_weight,
            "quality_diversity": rows,
            "inference_cost": cost,
            "eval_prompts": evaluation["prompts"],
            "audio": self.audio,
        }

    def _written(self, state: State, count: int) -> dict[str, list[tuple[int, Any]]]:
        """{model: [(generation index, notes)]}: its first `count` generations that have at
        least one readable note (an untrained model's may have none)."""
        out: dict[str, list[tuple[int, Any]]] = {}
        for name, tokens in self.evaluate(state)["generations"].items():
            out[name] = []
            for i, row in enumerate(tokens):
                if len(out[name]) == count:
                    break
                notes = detokenize(row[PROMPT_TOKENS - 1 :], strict=False)
                if len(notes):
                    out[name].append((i, notes))
        return out

    def tables(self, state: State) -> dict[str, pa.Table]:
        """`quality_diversity` (one row per model) and `piano_rolls` (each model's first
        generation with notes, as sample `<model>/sample_<i>`), drawn as
        plots/quality_diversity.png and plots/piano_rolls.png."""
        evaluation = self.evaluate(state)
        G = self.config.generations_per_prompt
        samples, prompts = {}, {}
        for name, written in self._written(state, 1).items():
            for i, notes in written:
                samples[f"{name}/sample_{i}"] = notes
                prompts[f"{name}/sample_{i}"] = evaluation["prompts"][i // G]
        return {"quality_diversity": quality_diversity_table(evaluation["rows"]),
                "piano_rolls": piano_roll_table(samples, prompts)}

    def files(self, state: State) -> dict[str, bytes]:
        """`midi/<model>/sample_<i>.mid`: the first `midi_per_model` generations with notes of
        every model (generation i answers prompt i // generations_per_prompt of
        `eval_prompts` in summary.json), and beside each `sample_<i>.wav` when FluidSynth
        renders audio here (summary.json's `audio` says whether it did)."""
        from gamescale.envs.music.audio import render_wav
        from gamescale.envs.music.score import write_midi

        out: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory() as scratch:
            for name, written in self._written(state, self.config.midi_per_model).items():
                for i, notes in written:
                    midi = write_midi(notes, Path(scratch) / f"{name}-{i}.mid").read_bytes()
                    out[f"midi/{name}/sample_{i}.mid"] = midi
                    if self.synth is not None:
                        out[f"midi/{name}/sample_{i}.wav"] = render_wav(self.synth, midi)
        return out


__all__ = ["MusicCfgDistill", "MatcherConfig", "MusicCfgDistillConfig"]
