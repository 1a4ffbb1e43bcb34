"""`music_cfg_distill` (gamescale/algorithms/music/cfg_distill.py): the reward loop's pieces,
identical results with 1 and 2 reward actors, the experiment's outputs (quality-diversity
table, pictures, MIDI) from a tiny run, bad input through the CLI, and (slow) the
experiment's shape at small size: beta > 0 raises diversity, distillation moves the
student toward the CFG teacher, the interpolated models trace the front between them."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import gamescale
from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.learner import TorchLearner
from gamescale.algorithms.lm.model import torch_threads
from gamescale.algorithms.music import cfg_distill
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.envs.music.audio import wav_seconds
from gamescale.envs.music.score import read_midi_notes
from gamescale.envs.registry import make_env

TINY_MODEL = {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64}, "context_length": 64,
              "batch_size": 8}
TINY = {
    "model": TINY_MODEL,
    "base_steps": 40,
    "matcher": {"dim": 16, "hidden": 32, "music_tokens": 32, "steps": 40},
    "completion_length": 32,
    "prompts_per_iteration": 2,
    "generations_per_prompt": 3,
    "betas": [0.0, 2.0],
    "mixes": [0.5],
    "eval_prompts": 2,
    "midi_per_model": 1,
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    """A corpus cache shared by this module's runs (4 chorales and 4 reels: a few seconds to parse)."""
    path = tmp_path_factory.mktemp("music-cache")
    make_env("music_corpus", collections=["bach", "ryansMammoth"], max_pieces=4, cache_dir=str(path))
    return str(path)


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


def _corpus(cache_dir: str):
    return make_env("music_corpus", collections=["bach", "ryansMammoth"], max_pieces=4, cache_dir=cache_dir)


def test_leave_one_out_advantage_is_centred_in_each_group():
    rewards = np.array([0.1, 0.4, 0.7, 1.0, 1.0, 2.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    advantage = cfg_distill.leave_one_out_advantage(rewards, groups)
    np.testing.assert_allclose(advantage[:3], [0.1 - 0.55, 0.4 - 0.4, 0.7 - 0.25], atol=1e-12)
    np.testing.assert_allclose(advantage[3:], [1.0 - 1.5, 1.0 - 1.5, 2.0 - 1.0])


def test_seeded_results_are_identical_with_one_and_two_reward_actors(ray_cluster, cache_dir):
    """The same init and steps with the reward pool on 1 and on 2 real actors (the sampler
    and learners in this process): every metric and every student weight is equal."""
    from gamescale.framework.actors import RolloutPool

    env = _corpus(cache_dir)
    quick = {**TINY, "base_steps": 10, "matcher": {**TINY["matcher"], "steps": 10}}
    algorithm = build_algorithm(algorithm_config({"name": "music_cfg_distill", **quick}), env)
    start = algorithm.init(0)
    env_cfg = {"name": "music_corpus", "collections": ["bach", "ryansMammoth"], "max_pieces": 4, "cache_dir": cache_dir}
    results = []
    for workers in (1, 2):
        pool = RolloutPool(env_cfg, workers, cpus=0.5)
        try:
            learners = {name: TorchLearner(spec) for name, spec in algorithm.learner_specs().items()}
            state, rows = start, []
            for iteration in range(2):  # iteration 1 trains on iteration 0's scored batch
                ctx = StepContext(iteration=iteration, seed=0, shards=LocalShardRunner(env), num_shards=2,
                                  learners=learners, pools={"reward": pool})
                state, metrics = algorithm.step(state, ctx)
                rows.append(metrics)
            assert pool.num_workers == workers
        finally:
            pool.shutdown()
        results.append((rows, {n: learner.get_weights() for n, learner in learners.items()}))
    (rows1, weights1), (rows2, weights2) = results
    assert rows1 == rows2
    assert "beta_2.distill_kl" in rows1[-1] and rows1[-1]["beta_2.diversity"] > 0
    for name in weights1:
        for key in weights1[name]:
            np.testing.assert_array_equal(weights1[name][key], weights2[name][key])
    # the students moved (the check could fail): beta 0 and beta 2 differ after training
    assert any(not np.array_equal(weights1["beta_0"][k], weights1["beta_2"][k]) for k in weights1["beta_0"])


def test_tiny_experiment_writes_the_quality_diversity_table_pictures_and_midi(ray_cluster, cache_dir, tmp_path):
    overrides = {
        "env.max_pieces": 4,
        "env.cache_dir": cache_dir,
        **{f"algorithm.{k}": v for k, v in TINY.items()},
        "algorithm.base_steps": 120,  # enough for the base model to write notes
        "algorithm.reward_workers": 2,
        "run.iterations": 2,
        "run.checkpoint_every": 1,
    }
    run = gamescale.run("music-cfg-distill", overrides=overrides, out=tmp_path / "run")
    assert run.finished  # this is also the experiment's two-iteration run-contract check
    assert run.metrics["iteration"].to_pylist() == [0, 1] and "diversity" in run.metrics.column_names
    summary = json.loads((run.dir / "summary.json").read_text())
    rows = summary["quality_diversity"]
    assert [r["model"] for r in rows] == ["base", "cfg_3", "beta_0", "beta_2", "mix_0.5"]
    assert all(np.isfinite(r["quality"]) and 0.0 <= r["diversity"] <= 2.0 for r in rows)
    assert summary["inference_cost"]["cfg_seconds_per_sample"] > 0
    table = pq.read_table(run.dir / "quality_diversity.parquet")
    assert table.column("model").to_pylist() == [r["model"] for r in rows]
    assert table.column("quality").to_pylist() == pytest.approx([r["quality"] for r in rows])
    assert (run.dir / "plots" / "quality_diversity.png").stat().st_size > 0
    assert (run.dir / "plots" / "piano_rolls.png").is_file()
    assert len(summary["placement"]["pools"]["reward"]["workers"]) == 2  # the reward pool ran on its own actors
    midi = sorted((run.dir / "midi").rglob("*.mid"))
    assert midi, "no model wrote a note"
    if summary["audio"].startswith("WAV rendered"):  # FluidSynth is here (CI installs it): audio beside each MIDI
        assert all(wav_seconds(path.with_suffix(".wav").read_bytes()) > 0 for path in midi)
    else:
        assert summary["audio"].startswith("no WAV") and not list((run.dir / "midi").rglob("*.wav"))
    # each model's first MIDI file parses back (music21) to the notes of that generation,
    # which the piano-roll table holds
    rolls = pq.read_table(run.dir / "piano_rolls.parquet").to_pandas()
    for sample in rolls["sample"].unique():
        notes = read_midi_notes(run.dir / "midi" / f"{sample}.mid")
        expected = rolls[rolls["sample"] == sample]
        assert sorted(zip(notes.onset.tolist(), notes.duration.tolist(), notes.pitch.tolist(), strict=True)) == sorted(
            zip(expected["onset"], expected["duration"], expected["pitch"], strict=True))


@pytest.mark.parametrize(
    "setting, message",
    [
        ("algorithm.model.guidance_scale=loud", "guidance_scale"),
        ('algorithm.prompts=["tempo: fast"]', "unknown prompt attribute 'tempo'"),
        ("env.scores=[{corrupt}]", "cannot read score"),  # read before the corpus is parsed
        ("algorithm.wav=true --set algorithm.soundfont={missing}", "wav is true but"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(tmp_path, setting, message):
    from gamescale.framework.cli import app

    corrupt = tmp_path / "corrupt.xml"
    corrupt.write_text("<score-partwise><part id='P1'><measure><note><pitch>")
    sets = setting.format(corrupt=corrupt, missing=tmp_path / "missing.sf2").split(" --set ")
    args = ["run", "music-cfg-distill", *(arg for value in sets for arg in ("--set", value)), "--out",
            str(tmp_path / "run"), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.slow
def test_beta_raises_diversity_and_the_mixes_trace_a_front(cache_dir):
    """The experiment's shape at small size, in this process, on average over three seeds
    (at this size one seed's students differ by chance about as much as beta moves them:
    seeds 0, 1, 2 gave beta_16 - beta_0 diversity -0.02, +0.21, +0.06): after training, the
    beta > 0 student's generations are more diverse than the beta = 0 student's, both
    students are closer (KL on held-out real openings) to the CFG teacher than the base model
    is, and the interpolated models trace the front between them: mixing factor 0 and 1
    reproduce the two students' rows exactly in every seed (same weights, same random
    numbers) and mean diversity rises with the mixing factor."""
    env = make_env("music_corpus", collections=["bach", "ryansMammoth"], max_pieces=16,
                   cache_dir=cache_dir)
    config = {**TINY, "model": {**TINY_MODEL, "context_length": 96}, "base_steps": 400, "completion_length": 48,
              "matcher": {"dim": 16, "hidden": 32, "music_tokens": 48, "steps": 200}, "betas": [0.0, 16.0],
              "prompts_per_iteration": 4, "generations_per_prompt": 8, "learning_rate": 1e-3,
              "updates_per_iteration": 4, "eval_prompts": 32, "mixes": [0.0, 0.5, 1.0]}
    runs = []
    for seed in range(3):
        algorithm = build_algorithm(algorithm_config({"name": "music_cfg_distill", **config}), env)
        state = algorithm.init(seed)
        learners = {name: TorchLearner(spec) for name, spec in algorithm.learner_specs().items()}
        runner = LocalShardRunner(env)
        for iteration in range(40):
            ctx = StepContext(iteration=iteration, seed=seed, shards=runner, num_shards=2, learners=learners,
                              pools={"reward": runner})
            state, _ = algorithm.step(state, ctx)
        rows = {r["model"]: r for r in algorithm.summary(state)["quality_diversity"]}
        for mix, student in (("mix_0", "beta_0"), ("mix_1", "beta_16")):  # the endpoints, bit for bit
            for key in ("quality", "diversity", "match", "loglik", "kl_to_cfg"):
                assert rows[mix][key] == rows[student][key], (seed, mix, key)
        runs.append(rows)

    def mean(model: str, key: str) -> float:
        return float(np.mean([rows[model][key] for rows in runs]))

    assert mean("beta_16", "diversity") > mean("beta_0", "diversity") + 0.02, runs
    assert mean("beta_0", "kl_to_cfg") < 0.8 * mean("base", "kl_to_cfg"), runs
    front = [mean(f"mix_{m:g}", "diversity") for m in config["mixes"]]
    assert front == sorted(front), (front, runs)


def test_algorithm_files_must_stay_inside_the_run_directory(tmp_path):
    from gamescale.framework.loop import _inside

    assert _inside(tmp_path, "midi/base/sample_0.mid") == tmp_path / "midi" / "base" / "sample_0.mid"
    for bad in ("../outside.mid", "/etc/passwd", "midi/../../x", ""):
        with pytest.raises(ValueError, match="inside the run directory"):
            _inside(tmp_path, bad)


def test_a_pool_reserving_more_cpus_than_the_cluster_has_is_refused(ray_cluster):
    from gamescale.framework.actors import RolloutPool
    from gamescale.framework.errors import ClusterError

    with pytest.raises(ClusterError, match="need 3 CPUs but the cluster has 2"):
        RolloutPool({"name": "music_corpus"}, 2, cpus=1.5)
