"""Teacher-hacking distillation: power-law fits and hacking detection on known curves, the
distillation loss against the divergence it names, a short run lowering the proxy, and a
checkpointed run resuming with identical losses (in process and through the real loop)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

import gamescale
from gamescale.algorithms.learner import TorchLearner
from gamescale.algorithms.lm.distill import TeacherHackingDistillation, _arrays_to_batch, distill_loss
from gamescale.algorithms.lm.losses import forward_kl, generalized_jsd, reverse_kl
from gamescale.algorithms.lm.scaling import detect_teacher_hacking, fit_power_law
from gamescale.algorithms.registry import algorithm_config
from gamescale.envs.registry import make_env
from gamescale.framework import storage
from gamescale.framework.errors import TrainingError
from gamescale.framework.pictures import draw_table

TINY_STUDENT = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32}


@pytest.fixture
def build(tiny_distill_lab):
    """`build(**algorithm fields) -> (env, algorithm)`: a distillation on the tiny lab."""

    def make(**algo):
        env = make_env("distill_lab", **tiny_distill_lab)
        config = algorithm_config(
            {"name": "distill", "student": TINY_STUDENT, "batch_size": 16, "steps_per_iteration": 5, **algo}
        )
        return env, TeacherHackingDistillation(config, env)

    return make


# ------------------------------------------------------------------ scaling laws


def test_power_law_fit_recovers_exponent_and_scale():
    t = np.arange(1, 200, dtype=float)
    fit = fit_power_law(t, 3.0 * t**-0.7)
    assert fit.a == pytest.approx(3.0, rel=1e-9) and fit.b == pytest.approx(0.7, rel=1e-9) and fit.r2 > 0.999999
    noisy = 3.0 * t**-0.7 * np.exp(np.random.default_rng(0).normal(0, 0.05, len(t)))
    assert fit_power_law(t, noisy).b == pytest.approx(0.7, abs=0.03)
    with pytest.raises(ValueError, match="at least 2"):
        fit_power_law(np.array([1.0]), np.array([1.0]))


def test_hacking_is_detected_on_a_u_shaped_golden_curve_with_falling_proxy():
    t = np.arange(1, 101, dtype=float)
    proxy = 2.0 * t**-0.5
    golden = np.where(t <= 40, 1.5 * t**-0.3, 1.5 * 40**-0.3 * (1 + 0.004 * (t - 40)))
    report = detect_teacher_hacking(t, proxy, golden, min_rise=0.05)
    assert report.detected
    assert report.golden_min_step == 40.0
    assert 40 <= report.onset_step <= 45
    assert report.golden_law.b == pytest.approx(0.3, abs=0.01)
    assert report.golden_rise == pytest.approx(0.004 * 60, rel=1e-6)


@pytest.mark.parametrize(
    "golden_kind,proxy_kind",
    [("monotone", "falling"), ("u", "flat_then_rising")],
)
def test_no_hacking_without_both_signs(golden_kind, proxy_kind):
    t = np.arange(1, 101, dtype=float)
    golden = 1.5 * t**-0.3 if golden_kind == "monotone" else np.abs(t - 50) / 50 + 0.5
    proxy = 2.0 * t**-0.5 if proxy_kind == "falling" else 1.0 + np.maximum(t - 60, 0) * 0.01
    assert not detect_teacher_hacking(t, proxy, golden).detected


# ------------------------------------------------------------------ the loss


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl", "jsd"])
def test_distill_loss_is_the_named_divergence_on_completion_positions(build, kind):
    env, algo = build(loss=kind)
    student = algo.student
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 12, (6, 8), generator=g)
    with torch.no_grad():
        teacher_lp = env.teacher(tokens[:, :-1])[:, 2:].log_softmax(-1)
    data = {
        "tokens": tokens.numpy().astype(np.int32),
        "teacher_logprobs": teacher_lp.reshape(6, -1).numpy(),
        "sampler_logprobs": np.zeros((6, 5), np.float32),
        "lag": np.zeros(6, np.int64),
    }
    loss, metrics = distill_loss(student, _arrays_to_batch(data), kind=kind, beta=0.3, prompt_length=3, vocab_size=12)
    q = student(tokens[:, :-1])[:, 2:]
    expected = {"forward_kl": forward_kl, "reverse_kl": reverse_kl}.get(kind)
    want = expected(teacher_lp, q) if expected else generalized_jsd(teacher_lp, q, beta=0.3)
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert metrics["distill_loss"] == pytest.approx(loss.item())
    bad = dict(data, teacher_logprobs=np.zeros((6, 5 * 13), np.float32))
    with pytest.raises(ValueError, match="vocabulary"):
        distill_loss(student, _arrays_to_batch(bad), kind=kind, beta=0.3, prompt_length=3, vocab_size=13)


# ------------------------------------------------------------------ runs


@pytest.mark.parametrize("regime", ["offline", "online"])
def test_a_short_run_lowers_the_proxy_and_golden_distances(build, drive, regime):
    env, algo = build(regime=regime, num_prompts=16, dataset_size=64, student_fraction=0.5)
    state, _, rows = drive(algo, env, 6)
    first, last = rows[0], rows[-1]
    assert last["proxy_distance"] < 0.7 * first["proxy_distance"]
    assert last["golden_distance"] < first["golden_distance"]
    assert len(state["history"]["step"]) == 6
    assert state["history"]["step"][-1] == 30
    if regime == "online":
        assert np.isfinite(last["lag"]) and last["lag"] >= 0


def test_resumed_state_and_learner_give_identical_losses(build, resume_repeats):
    env, algo = build(regime="online", num_prompts=16, student_fraction=0.5, sync_every=2)
    resume_repeats(algo, env, total=5, split=2)


def test_shard_count_changes_nothing_but_placement(build, drive):
    env, algo = build(regime="offline", num_prompts=16, dataset_size=64)
    _, _, two = drive(algo, env, 2, num_shards=2)
    _, _, two_again = drive(algo, env, 2, num_shards=2)
    assert two == two_again


def test_summary_tables_and_plot(build, drive, tmp_path):
    env, algo = build(regime="offline", num_prompts=16, dataset_size=64)
    state, _, _ = drive(algo, env, 4)
    summary = algo.summary(state)
    assert summary["hacking_detected"] in (True, False)
    assert summary["golden_min"] <= summary["golden_final"]
    table = algo.tables(state)["distill_curves"]
    assert isinstance(table, pa.Table) and table.num_rows == 4
    draw_table("distill_curves", table, tmp_path)
    assert (tmp_path / "distill_loglog.png").stat().st_size > 1000


@pytest.mark.slow  # 38 s; the default set keeps the loop's own crash-and-resume test with a learner actor
def test_crashed_run_resumes_with_identical_losses_on_actors(tiny_distill_lab, ray_cluster, tmp_path):
    """Through the real loop (learner actor, sampler actors): crash after a checkpoint,
    resume, and compare with an uninterrupted run on a different number of workers."""

    class Crash(RuntimeError):
        pass

    def crash(ctx):
        if ctx.iteration == 2:
            raise Crash("simulated driver failure")

    config = {
        "name": "distill-test",
        "env": {"name": "distill_lab", **tiny_distill_lab},
        "algorithm": {
            "name": "distill",
            "regime": "online",
            "student": TINY_STUDENT,
            "num_prompts": 16,
            "student_fraction": 0.5,
            "batch_size": 16,
            "steps_per_iteration": 3,
        },
        "runtime": {"workers": 2, "shards": 2},
        "run": {"iterations": 4, "checkpoint_every": 2},
    }
    out = tmp_path / "crashed"
    with pytest.raises(Crash):
        gamescale.run(config, out=out, callbacks=[crash])
    resumed = gamescale.resume(out)
    reference = gamescale.run(config, workers=1, out=tmp_path / "reference")
    drop = {"time_s"}
    rows = lambda run: [  # noqa: E731
        {k: v for k, v in row.items() if k not in drop} for row in run.metrics.to_pylist()
    ]
    assert resumed.metrics["iteration"].to_pylist() == [0, 1, 2, 3]
    assert rows(resumed) == rows(reference)
    assert (resumed.dir / "plots" / "distill_loglog.png").is_file()
    assert (resumed.dir / "distill_curves.parquet").is_file()


@pytest.mark.slow  # ~55 s under a load of 12 (actor start-up); the framework's own NaN test is in the default set
def test_nan_loss_stops_the_distillation_and_keeps_the_last_good_checkpoint(tiny_distill_lab, ray_cluster, tmp_path):
    """Through the real loop: the student's weights turn NaN after iteration 1 (a callback
    poisons the learner actor, as a diverging step would); iteration 2's loss is NaN, the
    run stops with one line naming it, no summary is written, and the newest checkpoint
    is the good one of iteration 1 (finite learner weights)."""

    def poison(ctx):
        if ctx.iteration == 1:
            student = ctx.learners["student"]
            student.set_weights({k: np.full_like(v, np.nan) for k, v in student.get_weights().items()})

    config = {
        "name": "distill-nan",
        "env": {"name": "distill_lab", **tiny_distill_lab},
        "algorithm": {
            "name": "distill",
            "student": TINY_STUDENT,
            "num_prompts": 16,
            "dataset_size": 32,
            "batch_size": 16,
            "steps_per_iteration": 2,
        },
        "runtime": {"workers": 1, "shards": 1},
        "run": {"iterations": 5, "checkpoint_every": 1},
    }
    out = tmp_path / "nan"
    with pytest.raises(TrainingError) as info:
        gamescale.run(config, out=out, callbacks=[poison])
    message = str(info.value)
    assert "distill_loss is nan at iteration 2" in message and "last good checkpoint" in message
    assert "\n" not in message
    assert not (out / storage.SUMMARY_FILE).exists()
    _, blobs, meta = storage.load_checkpoint(storage.latest_checkpoint(out))
    assert meta["next_iteration"] == 2
    env = make_env("distill_lab", **tiny_distill_lab)
    spec = TeacherHackingDistillation(algorithm_config(config["algorithm"]), env).learner_specs()["student"]
    learner = TorchLearner(spec)
    learner.load_bytes(blobs["student"])
    assert all(torch.isfinite(p).all() for p in learner.module.parameters())


@pytest.mark.slow
@pytest.mark.timeout(900)  # two full runs: 145-216 s per seed at a load of 9-15 (default limit 600 s)
@pytest.mark.parametrize("seed", [0, 1])
def test_offline_distillation_hacks_the_teacher_and_online_does_not(ray_cluster, tmp_path, seed):
    """The shipped experiments on two run seeds: offline ends with the golden distance
    clearly above its minimum while the proxy still falls; online does not, and ends
    closer to the oracle than offline."""
    offline = gamescale.run("distill-offline", overrides={"run.seed": seed}, out=tmp_path / "offline")
    online = gamescale.run("distill-online", overrides={"run.seed": seed}, out=tmp_path / "online")
    off, on = offline.summary, online.summary
    assert off["hacking_detected"] is True, off
    assert off["golden_rise"] > 0.08 and off["proxy_drop_after_onset"] > 0.5, off
    assert on["hacking_detected"] is False, on
    assert on["golden_rise"] < 0.03, on
    assert on["golden_final"] < 0.9 * off["golden_final"]
