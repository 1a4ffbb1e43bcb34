"""LM-lab benchmark: training and sampling throughput of the small causal transformer, and
the sampler/learner overlap of on-policy distillation with 1 and 2 sampler actors.

    python benchmarks/lm.py [--quick] [--json benchmarks/results/lm.json]

Measures (CPU here; the learner actor takes a GPU when the cluster has one):
- training tokens/s: Adam steps of the distillation loss (forward KL, full vocabulary);
- sampling tokens/s: `sample` with and without the KV cache;
- on-policy distillation on actors: tokens sampled per second by 1 and 2 sampler actors
  while the learner actor trains on the previous batch, and the learner busy fraction
  (time inside `update` / wall time of the iteration).
- peers, when installed (the `bench` extra): Hugging Face `generate` with its KV cache on
  a GPT-2 of the same shape, and seconds per fully on-policy distillation step (student
  samples, teacher scores, one Adam step of the generalised JSD) vs TRL's GKDTrainer with
  lmbda = 1 on GPT-2s of the same shapes; reported as unavailable when not installed.
Prints a table and writes JSON. Ray runs embedded on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from gamescale.algorithms.base import LearnerSpec, make_shard_tasks  # noqa: E402
from gamescale.algorithms.learner import TorchLearner  # noqa: E402
from gamescale.algorithms.lm.distill import (  # noqa: E402
    _arrays_to_batch,
    _batches_to_arrays,
    distill_loss,
    generate_shard,
    student_factory,
)
from gamescale.algorithms.lm.model import TransformerConfig, build_model  # noqa: E402
from gamescale.algorithms.lm.sampling import sample  # noqa: E402


def model_config(quick: bool) -> TransformerConfig:
    return TransformerConfig(
        vocab_size=64,
        context_length=40 if quick else 72,
        d_model=64 if quick else 128,
        n_layers=2 if quick else 4,
        n_heads=4,
        d_ff=256 if quick else 512,
    )


def training_throughput(cfg: TransformerConfig, batch: int, prompt: int, seconds: float) -> dict:
    import functools

    spec = LearnerSpec(
        module_factory=functools.partial(student_factory, cfg.model_dump_json(), 0),
        loss_fn=functools.partial(
            distill_loss, kind="forward_kl", beta=0.5, prompt_length=prompt, vocab_size=cfg.vocab_size
        ),
    )
    learner = TorchLearner(spec)
    g = torch.Generator().manual_seed(0)
    L, N, V = cfg.context_length, cfg.context_length - prompt, cfg.vocab_size
    tokens = torch.randint(0, V, (batch, L), generator=g)
    teacher = torch.randn(batch, N, V, generator=g).log_softmax(-1)
    data = _arrays_to_batch(
        {
            "tokens": tokens.numpy().astype(np.int32),
            "teacher_logprobs": teacher.reshape(batch, -1).numpy(),
            "sampler_logprobs": np.zeros((batch, N), np.float32),
            "lag": np.zeros(batch, np.int64),
        }
    )
    learner.update(data, num_steps=2)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        learner.update(data, num_steps=1)
        steps += 1
    elapsed = time.perf_counter() - start
    return {"steps_per_s": steps / elapsed, "tokens_per_s": steps * batch * (L - 1) / elapsed}


def sampling_throughput(cfg: TransformerConfig, batch: int, prompt: int, use_cache: bool, repeats: int) -> float:
    model = build_model(cfg, 0)
    prompts = torch.randint(0, cfg.vocab_size, (batch, prompt), generator=torch.Generator().manual_seed(1))
    new = cfg.context_length - prompt
    sample(model, prompts, 2, generator=torch.Generator().manual_seed(0), use_cache=use_cache)
    start = time.perf_counter()
    for r in range(repeats):
        sample(model, prompts, new, generator=torch.Generator().manual_seed(r), use_cache=use_cache)
    return repeats * batch * new / (time.perf_counter() - start)


def hf_generate_throughput(cfg: TransformerConfig, batch: int, prompt: int, repeats: int) -> float | None:
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=cfg.vocab_size,
            n_positions=cfg.context_length,
            n_embd=cfg.d_model,
            n_layer=cfg.n_layers,
            n_head=cfg.n_heads,
            n_inner=cfg.d_ff,
        )
    ).eval()
    prompts = torch.randint(0, cfg.vocab_size, (batch, prompt))
    new = cfg.context_length - prompt
    kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=True, top_k=0, use_cache=True, pad_token_id=0)
    with torch.no_grad():
        mask = torch.ones_like(prompts)
        model.generate(prompts, attention_mask=mask, **{**kw, "max_new_tokens": 2, "min_new_tokens": 2})
        start = time.perf_counter()
        for _ in range(repeats):
            model.generate(prompts, attention_mask=mask, **kw)
    return repeats * batch * new / (time.perf_counter() - start)


def student_teacher_configs(cfg: TransformerConfig) -> tuple[TransformerConfig, TransformerConfig]:
    """The on-policy comparison's pair: the student is `cfg`, the teacher twice as wide."""
    teacher = cfg.model_copy(update={"d_model": 2 * cfg.d_model, "d_ff": 2 * cfg.d_ff})
    return cfg, teacher


def gamescale_onpolicy_step(cfg: TransformerConfig, batch: int, prompt: int, beta: float, steps: int) -> float:
    """Seconds per fully on-policy distillation step on one process: the student samples
    its completions (KV cache), the teacher scores them over the full vocabulary, and the
    learner takes one Adam step of the generalised JSD (the path the lab's actors run)."""
    import functools

    student_cfg, teacher_cfg = student_teacher_configs(cfg)
    teacher = build_model(teacher_cfg, 1).eval().requires_grad_(False)
    learner = TorchLearner(
        LearnerSpec(
            module_factory=functools.partial(student_factory, student_cfg.model_dump_json(), 0),
            loss_fn=functools.partial(
                distill_loss, kind="jsd", beta=beta, prompt_length=prompt, vocab_size=cfg.vocab_size
            ),
        )
    )
    new = cfg.context_length - prompt
    prompts = torch.randint(0, cfg.vocab_size, (batch, prompt), generator=torch.Generator().manual_seed(2))

    def step(seed: int) -> None:
        drawn = sample(learner.module, prompts, new, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            teacher_lp = torch.log_softmax(teacher(drawn.tokens[:, :-1])[:, prompt - 1 :], dim=-1)
        data = _arrays_to_batch(
            {
                "tokens": drawn.tokens.numpy().astype(np.int32),
                "teacher_logprobs": teacher_lp.reshape(batch, -1).numpy(),
                "sampler_logprobs": drawn.logprobs.numpy(),
                "lag": np.zeros(batch, np.int64),
            }
        )
        learner.update(data, num_steps=1)

    for seed in range(2):  # warm-up
        step(seed)
    start = time.perf_counter()
    for seed in range(steps):
        step(100 + seed)
    return (time.perf_counter() - start) / steps


def _local_tokenizer(vocab_size: int):
    """A word-level tokenizer over `vocab_size` symbols built in memory (no download);
    the last id doubles as the pad token GKDTrainer needs."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(vocab_size)}
    core = Tokenizer(WordLevel(vocab, unk_token="t0"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="t0", pad_token=f"t{vocab_size - 1}")


def _gpt2(cfg: TransformerConfig, seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=cfg.vocab_size,
            n_positions=cfg.context_length,
            n_embd=cfg.d_model,
            n_layer=cfg.n_layers,
            n_head=cfg.n_heads,
            n_inner=cfg.d_ff,
            bos_token_id=None,
            eos_token_id=None,
        )
    )


def trl_gkd_step(cfg: TransformerConfig, batch: int, prompt: int, beta: float, steps: int) -> float | None:
    """Seconds per step of TRL's GKDTrainer on GPT-2s of the same shapes (built from configs,
    nothing downloaded) with lmbda = 1 (every step samples from the student, KV cache),
    the same batch, lengths and generalised JSD (beta); None when TRL is not installed."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        import datasets
        from transformers import TrainerCallback

        try:
            from trl.experimental.gkd import GKDConfig, GKDTrainer
        except ImportError:
            from trl import GKDConfig, GKDTrainer
    except ImportError:
        return None
    import tempfile

    student_cfg, teacher_cfg = student_teacher_configs(cfg)
    student, teacher = _gpt2(student_cfg, 0), _gpt2(teacher_cfg, 1)
    new = cfg.context_length - prompt
    g = torch.Generator().manual_seed(2)
    # pad = the last id: keep it out of the prompts so no prompt token is masked
    prompts = torch.randint(0, cfg.vocab_size - 1, (batch * (steps + 2), prompt), generator=g)
    train = datasets.Dataset.from_dict({"prompts": prompts.tolist()})

    def collate(rows):
        ids = torch.tensor([r["prompts"] for r in rows])
        ones = torch.ones_like(ids)
        return {"input_ids": ids, "attention_mask": ones, "labels": ids, "prompts": ids, "prompt_attention_mask": ones}

    class Clock(TrainerCallback):
        def __init__(self):
            self.begin, self.times = 0.0, []

        def on_step_begin(self, args, state, control, **kw):
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.begin)

    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        args = GKDConfig(
            output_dir=out,
            lmbda=1.0,
            beta=beta,
            temperature=1.0,
            max_new_tokens=new,
            max_length=cfg.context_length,
            per_device_train_batch_size=batch,
            max_steps=steps + 2,
            learning_rate=1e-3,
            logging_strategy="no",
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            dataloader_num_workers=0,
            disable_tqdm=True,
            gradient_checkpointing=False,  # on by default in TRL; it would also turn off the KV cache
        )
        trainer = GKDTrainer(
            model=student,
            teacher_model=teacher,
            args=args,
            data_collator=collate,
            train_dataset=train,
            processing_class=_local_tokenizer(cfg.vocab_size),
            callbacks=[clock],
        )
        trainer.train()
    return float(np.mean(clock.times[2:]))  # after two warm-up steps


def onpolicy_steps(cfg: TransformerConfig, batch: int, prompt: int, steps: int, beta: float = 0.5) -> dict:
    """gamescale vs TRL seconds per on-policy step, and their ratio (target: <= 0.5)."""
    ours = gamescale_onpolicy_step(cfg, batch, prompt, beta, steps)
    trl = trl_gkd_step(cfg, batch, prompt, beta, steps)
    student, teacher = student_teacher_configs(cfg)
    return {
        "student": student.model_dump(),
        "teacher": teacher.model_dump(),
        "beta": beta,
        "gamescale": ours,
        "trl_gkd": trl,
        "ratio": None if trl is None else ours / trl,
    }


def worker_cpus(workers: int, wait_s: float = 60.0) -> float:
    """CPU reservation of each sampler actor: one core each while the cluster has them
    free, else an equal share of the free ones (2 actors beside 1 free CPU reserve 0.5
    each), so the pool never waits on CPUs that other jobs, or the previous pool's actors
    still being torn down, hold. Waits up to `wait_s` for the free count to reach
    `workers` first."""
    import ray

    deadline = time.monotonic() + wait_s
    while True:
        free = float(ray.available_resources().get("CPU", 0.0))
        if free >= workers or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if free <= 0:
        total = float(ray.cluster_resources().get("CPU", 0.0))
        raise RuntimeError(f"no free CPU in the Ray cluster ({total:g} in all, all held) after {wait_s:g} s")
    return min(1.0, free / workers)


def actor_overlap(workers: int, iterations: int, quick: bool) -> dict:
    """On-policy distillation on actors: sampler actors generate the next batch (student
    completions with teacher distributions) while the learner actor trains."""
    import functools

    from gamescale.envs.lm.distill import DistillLabConfig
    from gamescale.framework.actors import RemoteLearner, RolloutPool

    lab = DistillLabConfig(teacher_steps=20 if quick else 100, completion_length=8 if quick else 24)
    env_cfg = {"name": "distill_lab", **lab.model_dump(mode="json")}
    student_cfg = lab.transformer(lab.teacher)
    cpus = worker_cpus(workers)
    pool = RolloutPool(env_cfg, workers, cpus=cpus, start_timeout_s=600.0)  # slow starts on a loaded machine
    spec = LearnerSpec(
        module_factory=functools.partial(student_factory, student_cfg.model_dump_json(), 0),
        loss_fn=functools.partial(
            distill_loss, kind="forward_kl", beta=0.5, prompt_length=lab.prompt_length, vocab_size=lab.vocab_size
        ),
    )
    learner = RemoteLearner(spec, "auto")
    rows = 256 if quick else 1024
    prompts = np.random.default_rng(0).integers(0, lab.vocab_size, (rows, lab.prompt_length))
    try:
        weights = learner.get_weights()

        def shared(version):
            return {
                "source": "student",
                "prompts": prompts,
                "student": {"config": student_cfg.model_dump(mode="json"), "weights": weights, "version": version},
            }

        batch = _arrays_to_batch(_batches_to_arrays(pool.map(generate_shard, make_shard_tasks(0, 0, 4), shared(0)), 0))
        busy, start = 0.0, time.perf_counter()
        for it in range(1, iterations + 1):
            pending = pool.submit(generate_shard, make_shard_tasks(0, it, 4), shared(it - 1))
            t0 = time.perf_counter()
            learner.update(batch, num_steps=4, batch_size=64, seed=it)
            busy += time.perf_counter() - t0
            batch = _arrays_to_batch(_batches_to_arrays(pending.result(), it))
            weights = learner.get_weights()
        wall = time.perf_counter() - start
    finally:
        pool.shutdown()
        learner.shutdown()
    sampled = iterations * rows * lab.completion_length
    return {
        "workers": workers,
        "cpus_per_worker": cpus,
        "sampled_tokens_per_s": sampled / wall,
        "learner_busy_fraction": busy / wall,
    }


def peer_versions() -> dict:
    """Installed versions of the peers compared against (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("transformers", "trl", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def usable_cpus() -> int:
    """Cores this process may run on (its affinity), which a container may set below the
    host's count: the embedded Ray is sized to them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models and short timings")
    parser.add_argument("--json", default="benchmarks/results/lm.json")
    parser.add_argument("--no-actors", action="store_true", help="skip the Ray part")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process (tiny models: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    quick = args.quick
    cfg = model_config(quick)
    batch, prompt = (32, 8) if quick else (64, 8)
    repeats = 2 if quick else 5
    results: dict = {
        "quick": quick,
        "torch_threads": args.threads,
        "peers": peer_versions(),
        "model": cfg.model_dump(),
        "batch": batch,
        "training": training_throughput(cfg, batch, prompt, 2.0 if quick else 10.0),
        "sampling_tokens_per_s": {
            "kv_cache": sampling_throughput(cfg, batch, prompt, True, repeats),
            "no_cache": sampling_throughput(cfg, batch, prompt, False, repeats),
            "hf_generate": hf_generate_throughput(cfg, batch, prompt, repeats),
        },
        "onpolicy_step_s": onpolicy_steps(cfg, batch, prompt, 3 if quick else 10),
        "actors": [],
    }
    if not args.no_actors:
        from gamescale.framework.runtime import connect

        connect(None, usable_cpus())
        for workers in (1, 2):
            results["actors"].append(actor_overlap(workers, 3 if quick else 10, quick))
    print(f"{'model parameters (d_model/layers)':44s} {cfg.d_model}/{cfg.n_layers}")
    print(f"{'training tokens/s (forward KL, Adam)':44s} {results['training']['tokens_per_s']:12.0f}")
    for name, value in results["sampling_tokens_per_s"].items():
        shown = "unavailable" if value is None else f"{value:12.0f}"
        print(f"{'sampling tokens/s ' + name:44s} {shown}")
    step = results["onpolicy_step_s"]
    print(f"{'on-policy JSD step s, gamescale':44s} {step['gamescale']:12.4f}")
    shown = "unavailable" if step["trl_gkd"] is None else f"{step['trl_gkd']:12.4f}   ratio {step['ratio']:.2f}"
    print(f"{'on-policy JSD step s, TRL GKDTrainer':44s} {shown}")
    for row in results["actors"]:
        print(
            f"{'on-policy, ' + str(row['workers']) + ' sampler actor(s): tokens/s':44s} "
            f"{row['sampled_tokens_per_s']:12.0f}   learner busy {row['learner_busy_fraction']:.2f}"
        )
    from machine import describe_machine  # benchmarks/machine.py (its folder is on sys.path)

    results = {"machine": describe_machine(), **results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
