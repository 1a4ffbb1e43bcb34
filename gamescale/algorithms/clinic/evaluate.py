"""The clinic evaluation as a step-interface algorithm.

Iteration i takes the next `cases_per_iteration` case indices, splits them into
`ctx.num_shards` contiguous blocks and plays each block in a shard (`evaluate_shard`,
wherever the rollout workers are). A shard returns one row per case with its whole
transcript as list columns; the step keeps them in the state, so the tables at the end
(`transcripts`: one row per turn; `cases`: one row per case; `test_requests`: counts)
do not depend on how many workers played. A case whose player raised (an endpoint that
failed after its retries) is a row with `status = "failed"` and the error, counted as
not correct.

Metrics (cumulative over the cases played so far): `accuracy` with the 95% Wilson
interval `accuracy_low`/`accuracy_high`, `mean_turns` (doctor utterances per case),
`tests_requested` (per case), `failed`, `cases`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import ShardTask, State, StepContext, Stop
from gamescale.algorithms.clinic.config import ClinicEvalConfig, PlayerConfig
from gamescale.algorithms.tables import annotate
from gamescale.envs.clinic.agents import (
    MeasurementAgent,
    RetrievalDoctor,
    RetrievalPatient,
    RulesModerator,
    play,
)
from gamescale.envs.clinic.cases import load_cases
from gamescale.envs.clinic.clinic import ClinicEnv
from gamescale.envs.clinic.models import EndpointChatModel, LocalChatModel, ModelPlayer, check_model_dir

Z95 = 1.959963984540054
_RULE = re.compile(r"rule:\s*([\w-]+)")
_MODELS: dict[str, Any] = {}  # chat models loaded in this process (one per worker), by spec


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (NaNs for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _chat_model(spec: PlayerConfig) -> Any:
    key = spec.model_dump_json(include={"kind", "model_dir", "base_url", "model", "retries", "timeout_s"})
    if key not in _MODELS:
        if spec.kind == "local":
            _MODELS[key] = LocalChatModel(spec.model_dir)
        else:
            _MODELS[key] = EndpointChatModel(spec.base_url, spec.model, spec.timeout_s, spec.retries)
    return _MODELS[key]


def build_players(specs: dict[str, dict], pool: list[str], threshold: float) -> dict[str, Any]:
    """One policy per role from the role specs (plain dicts of `PlayerConfig`)."""
    players: dict[str, Any] = {"measurement": MeasurementAgent()}
    for role, raw in specs.items():
        spec = PlayerConfig.model_validate(raw)
        if spec.kind == "retrieval":
            players[role] = RetrievalDoctor(pool) if role == "doctor" else RetrievalPatient()
        elif spec.kind == "rules":
            players[role] = RulesModerator(threshold)
        else:
            players[role] = ModelPlayer(_chat_model(spec), spec.max_new_tokens, spec.temperature)
    return players


def evaluate_shard(env: ClinicEnv, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Play the cases `task.payload` (indices); one row per case, transcript as lists."""
    players = build_players(shared["players"], shared["pool"], shared["threshold"])
    rows: dict[str, list] = {k: [] for k in _CASE_FIELDS}
    for position, index in enumerate(task.payload):
        seed = (task.seed + position) % (1 << 31)
        for player in players.values():
            if isinstance(player, ModelPlayer):
                player.seed = seed
        status, error = "ok", ""
        try:
            episode = play(env, players, int(index), seed)
            transcript, diagnosis, correct = episode.transcript, episode.diagnosis, episode.correct
            turns, tests = episode.doctor_turns, list(episode.tests_requested)
        except Exception as exc:  # a player that failed for good: the case is kept as failed
            status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
            transcript, diagnosis, correct = tuple(env.transcript), "", False
            turns, tests = env.doctor_turns, list(env.tests_requested)
        verdict = transcript[-1].text if transcript and transcript[-1].speaker == "moderator" else ""
        rule = _RULE.search(verdict)
        values = {
            "case_index": int(index),
            "correct_diagnosis": env.case.diagnosis,
            "diagnosis": diagnosis,
            "correct": bool(correct),
            "rule": rule.group(1) if rule else ("model" if verdict else ""),
            "doctor_turns": int(turns),
            "tests": tests,
            "status": status,
            "error": error,
            "speakers": [t.speaker for t in transcript],
            "kinds": [t.kind for t in transcript],
            "texts": [t.text for t in transcript],
        }
        for key, value in values.items():
            rows[key].append(value)
    return pa.RecordBatch.from_pydict(rows, schema=CASE_SCHEMA)


CASE_SCHEMA = pa.schema(
    [
        ("case_index", pa.int64()),
        ("correct_diagnosis", pa.string()),
        ("diagnosis", pa.string()),
        ("correct", pa.bool_()),
        ("rule", pa.string()),
        ("doctor_turns", pa.int64()),
        ("tests", pa.list_(pa.string())),
        ("status", pa.string()),
        ("error", pa.string()),
        ("speakers", pa.list_(pa.string())),
        ("kinds", pa.list_(pa.string())),
        ("texts", pa.list_(pa.string())),
    ]
)
_CASE_FIELDS = CASE_SCHEMA.names
_STATE_STR = ("correct_diagnosis", "diagnosis", "rule", "status", "error")
_STATE_INT = ("case_index", "doctor_turns")


def check_player(role: str, spec: PlayerConfig) -> None:
    """Fail before any case is played: a model directory without weights, an endpoint that
    does not answer (ValueError, one line)."""
    if spec.kind == "local":
        check_model_dir(spec.model_dir)
    elif spec.kind == "endpoint":
        EndpointChatModel(spec.base_url, spec.model, timeout_s=min(spec.timeout_s, 10.0)).probe()


class ClinicEvaluation:
    """`clinic_eval`: the configured doctor, patient and moderator on every case of the env."""

    uses_rollout_workers = True

    def __init__(self, config: ClinicEvalConfig, env: ClinicEnv):
        for role in ("doctor", "patient", "moderator"):
            check_player(role, getattr(config, role))
        self.config = config
        self.case_set = env.case_set
        self.num_cases = min(len(env.cases), config.max_cases or len(env.cases))
        self.pool = sorted({c.diagnosis for name in config.diagnosis_pool for c in load_cases(name)})
        self.shared = {
            "players": {role: getattr(config, role).model_dump() for role in ("doctor", "patient", "moderator")},
            "pool": self.pool,
            "threshold": config.threshold,
        }

    def learner_specs(self) -> dict:
        return {}

    def init(self, seed: int) -> State:
        state: State = {"next_case": 0, "correct": np.zeros(0, bool), "num_tests": np.zeros(0, np.int64)}
        for key in (*_STATE_STR, "tests", "speakers", "kinds", "texts"):
            state[key] = np.zeros(0, np.str_)
        for key in _STATE_INT:
            state[key] = np.zeros(0, np.int64)
        state["num_turns"] = np.zeros(0, np.int64)
        return state

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        start = int(state["next_case"])
        stop = min(start + self.config.cases_per_iteration, self.num_cases)
        blocks = [b.tolist() for b in np.array_split(np.arange(start, stop), ctx.num_shards)]
        batches = ctx.shards.map(evaluate_shard, ctx.shard_tasks(blocks), shared=self.shared)
        table = pa.Table.from_batches(batches, schema=CASE_SCHEMA)
        new = dict(state)
        new["next_case"] = stop
        for key in _STATE_STR:
            new[key] = np.concatenate([state[key], np.asarray(table[key].to_pylist(), np.str_)])
        for key in _STATE_INT:
            new[key] = np.concatenate([state[key], np.asarray(table[key].to_pylist(), np.int64)])
        new["correct"] = np.concatenate([state["correct"], np.asarray(table["correct"].to_pylist(), bool)])
        tests = table["tests"].to_pylist()
        new["num_tests"] = np.concatenate([state["num_tests"], np.asarray([len(t) for t in tests], np.int64)])
        new["tests"] = np.concatenate([state["tests"], np.asarray([x for t in tests for x in t], np.str_)])
        # transcripts, flattened: num_turns[i] turns belong to the i-th case row
        texts = table["texts"].to_pylist()
        new["num_turns"] = np.concatenate([state["num_turns"], np.asarray([len(t) for t in texts], np.int64)])
        for key in ("speakers", "kinds", "texts"):
            flat = [x for row in table[key].to_pylist() for x in row]
            new[key] = np.concatenate([state[key], np.asarray(flat, np.str_)])
        return new, self.metrics(new)

    @staticmethod
    def metrics(state: State) -> dict[str, float]:
        n, k = len(state["correct"]), int(state["correct"].sum())
        low, high = wilson_interval(k, n)
        return {
            "accuracy": k / n if n else math.nan,
            "accuracy_low": low,
            "accuracy_high": high,
            "mean_turns": float(state["doctor_turns"].mean()) if n else math.nan,
            "tests_requested": float(state["num_tests"].mean()) if n else math.nan,
            "failed": float((state["status"] == "failed").sum()),
            "cases": float(n),
        }

    def should_stop(self, state: State, metrics: dict[str, float]) -> Stop | None:
        if int(state["next_case"]) >= self.num_cases:
            return Stop("budget", f"all {self.num_cases} cases of {self.case_set} evaluated")
        return None

    def summary(self, state: State) -> dict[str, Any]:
        m = self.metrics(state)
        return {
            "case_set": self.case_set,
            "cases": int(m["cases"]),
            "accuracy": m["accuracy"],
            "accuracy_95": [m["accuracy_low"], m["accuracy_high"]],
            "failed": int(m["failed"]),
            "chance": 1.0 / len(self.pool),
        }

    def tables(self, state: State) -> dict[str, pa.Table]:
        n = len(state["correct"])
        turns = state["num_turns"]
        case_of_turn = np.repeat(state["case_index"], turns)
        turn_number = np.arange(int(turns.sum())) - np.repeat(np.cumsum(turns) - turns, turns)
        transcripts = pa.table(
            {
                "case_set": pa.array([self.case_set] * int(turns.sum()), pa.string()),
                "case_index": case_of_turn,
                "turn": turn_number.astype(np.int64),
                "speaker": state["speakers"].tolist(),
                "kind": state["kinds"].tolist(),
                "text": state["texts"].tolist(),
            }
        )
        offsets = np.concatenate([[0], np.cumsum(state["num_tests"])])
        cases = pa.table(
            {
                "case_set": [self.case_set] * n,
                "case_index": state["case_index"],
                "correct_diagnosis": state["correct_diagnosis"].tolist(),
                "diagnosis": state["diagnosis"].tolist(),
                "correct": state["correct"],
                "rule": state["rule"].tolist(),
                "doctor_turns": state["doctor_turns"],
                "tests": [state["tests"][offsets[i] : offsets[i + 1]].tolist() for i in range(n)],
                "status": state["status"].tolist(),
                "error": state["error"].tolist(),
            }
        )
        names, counts = np.unique(state["tests"], return_counts=True)
        order = np.lexsort((names, -counts))
        requests = annotate(
            pa.table({"test": names[order].tolist(), "count": counts[order].astype(np.int64)}),
            title=f"Most requested tests ({self.case_set}, {n} cases)",
        )
        m = self.metrics(state)
        accuracy = annotate(
            pa.table(
                {
                    "case_set": [self.case_set],
                    "cases": [n],
                    "accuracy": [m["accuracy"]],
                    "accuracy_low": [m["accuracy_low"]],
                    "accuracy_high": [m["accuracy_high"]],
                }
            ),
            doctor=json.loads(PlayerConfig.model_validate(self.shared["players"]["doctor"]).model_dump_json()),
        )
        return {"transcripts": transcripts, "cases": cases, "test_requests": requests, "accuracy_by_case_set": accuracy}


def build_evaluation(config: ClinicEvalConfig, env: ClinicEnv) -> ClinicEvaluation:
    if not isinstance(env, ClinicEnv):
        raise ValueError("clinic_eval needs the clinic environment")
    return ClinicEvaluation(config, env)
