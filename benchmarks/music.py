"""Music benchmark: generation throughput of the conditional music model with and without
classifier-free guidance, and reward-actor scoring throughput with 1 and 2 actors.

Generation: tokens/s of `sample` (the distilled student: one forward pass per token) and
`sample_cfg` (two: the conditional and unconditional rows in one 2B batch through one KV
cache) for the `music-cfg-distill` model shape. Scoring: generations/s of `score_shard`
(matcher cosine, CFG-teacher log-likelihood, diversity per prompt group) over the reward
pool, as the algorithm calls it (a fixed number of shards over 1 or 2 Ray actors). Prints a
table and writes benchmarks/results/music.json with the machine it ran on.

    python benchmarks/music.py [--quick] [--no-actors]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gamescale.algorithms.base import make_shard_tasks
from gamescale.algorithms.lm.sampling import sample
from gamescale.algorithms.music import cfg_distill
from gamescale.algorithms.music.conditional import build_conditional_model, sample_cfg
from gamescale.algorithms.music.config import MusicCfgDistillConfig
from gamescale.algorithms.music.matching import build_matcher
from gamescale.envs.music import vocab as V


def _prompts(batch: int) -> torch.Tensor:
    prompt = V.make_prompt(collection="bach", key="G minor", meter="4/4", voices="4").tokens()
    return torch.tensor([[*prompt, V.BOS]] * batch)


def generation_throughput(config: MusicCfgDistillConfig, batch: int, repeats: int) -> dict[str, float]:
    """Generated tokens/s without and with CFG (best of `repeats`)."""
    model = build_conditional_model(config.model)
    prompts, new = _prompts(batch), config.completion_length
    out = {}
    for name, draw in (
        ("distilled_no_cfg", lambda g: sample(model, prompts, new, generator=g)),
        ("cfg", lambda g: sample_cfg(model, prompts, new, config.model.guidance_scale, generator=g)),
    ):
        best = float("inf")
        for r in range(repeats):
            generator = torch.Generator().manual_seed(r)
            start = time.perf_counter()
            draw(generator)
            best = min(best, time.perf_counter() - start)
        out[name] = batch * new / best
    return out


def scoring_throughput(config: MusicCfgDistillConfig, workers: int, generations: int, shards: int,
                       cache_dir: str, repeats: int) -> float:
    """Generations scored per second on a reward pool of `workers` actors (best of `repeats`)."""
    from gamescale.framework.actors import RolloutPool

    teacher = build_conditional_model(config.model)
    matcher = build_matcher(config.matcher, 0)
    rng = np.random.default_rng(0)
    groups = config.generations_per_prompt
    tokens = np.concatenate(
        [_prompts(generations).numpy(), rng.integers(V.BAR, V.PROMPT_BASE, (generations, config.completion_length))],
        axis=1)
    ids = np.repeat(np.arange(generations // groups), groups)
    parts = np.array_split(np.arange(generations // groups), shards)
    payloads = [{"tokens": tokens[np.isin(ids, p)].astype(np.int32), "groups": ids[np.isin(ids, p)]} for p in parts]
    shared = {"model": config.model, "teacher": cfg_distill._weights(teacher), "matcher_config": config.matcher,
              "matcher": cfg_distill._weights(matcher), "guidance_scale": config.model.guidance_scale,
              "likelihood_weight": config.likelihood_weight}
    env_cfg = {"name": "music_corpus", "collections": ["bach"], "max_pieces": 4, "cache_dir": cache_dir}
    pool = RolloutPool(env_cfg, workers, cpus=min(1.0, 2.0 / workers))
    try:
        tasks = make_shard_tasks(0, 0, shards, payloads=payloads)
        pool.map(cfg_distill.score_shard, tasks, shared)  # warm: models built in each actor
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            pool.map(cfg_distill.score_shard, tasks, shared)
            best = min(best, time.perf_counter() - start)
    finally:
        pool.shutdown()
    return generations / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and generations")
    parser.add_argument("--no-actors", action="store_true", help="skip the Ray part")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process (tiny models: 1)")
    parser.add_argument("--json", default="benchmarks/results/music.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from gamescale.framework.config import load_config

    config = load_config("music-cfg-distill").algorithm
    batch, repeats = (16, 2) if args.quick else (32, 5)
    from machine import describe_machine  # benchmarks/machine.py (its folder is on sys.path)

    results: dict = {"machine": {**describe_machine(), "torch_threads": args.threads}, "model": config.model.model.model_dump(),
                     "completion_length": config.completion_length, "batch": batch}
    gen = generation_throughput(config, batch, repeats)
    results["generation_tokens_per_s"] = gen
    results["cfg_slowdown"] = gen["distilled_no_cfg"] / gen["cfg"]
    rows = [("generation, distilled (no CFG)", f"{gen['distilled_no_cfg']:.0f} tokens/s"),
            ("generation, CFG (2 passes)", f"{gen['cfg']:.0f} tokens/s"),
            ("CFG slowdown", f"{results['cfg_slowdown']:.2f}x")]
    results["scoring_generations_per_s"] = {}
    if not args.no_actors:
        import ray

        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        from gamescale.envs.registry import make_env

        with tempfile.TemporaryDirectory() as cache:
            make_env("music_corpus", collections=["bach"], max_pieces=4, cache_dir=cache)  # the actors' env
            ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                     logging_level="WARNING")
            try:
                generations = 64 if args.quick else 256
                for workers in (1, 2):
                    rate = scoring_throughput(config, workers, generations, 4, cache, repeats)
                    results["scoring_generations_per_s"][str(workers)] = rate
                    rows.append((f"reward scoring, {workers} actor(s)", f"{rate:.1f} generations/s"))
            finally:
                ray.shutdown()
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
