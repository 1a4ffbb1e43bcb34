"""Rule-based and retrieval agents for the clinic, and the loop that plays one episode.

A policy is anything with `act(observation: str, info: dict) -> str` (the AEC env's text
observation and `infos[agent]`). The baselines here are deterministic:

* `RetrievalPatient` answers with the (at most two) sentences of its case sheet that score
  highest under BM25 against the question, or its history's first sentence when nothing
  matches.
* `MeasurementAgent` returns the case's result for a listed test, else normal readings.
* `RetrievalDoctor` asks a fixed history protocol, requests the tests the case offers, and
  names the candidate diagnosis (from a pool: all cases' diagnoses) most similar (TF-IDF
  cosine) to what it heard. Its `max_turns - 1` utterances go to questions first, then
  tests; the last is the diagnosis.
* `RulesModerator` applies `moderator.judge` and says which rule decided.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gamescale.envs.clinic.cases import Case
from gamescale.envs.clinic.clinic import NORMAL_RESULT, ClinicEnv, Turn
from gamescale.envs.clinic.moderator import DEFAULT_THRESHOLD, judge
from gamescale.envs.clinic.text import BM25Index, TfidfIndex, sentences

HISTORY_PROTOCOL = (
    "What brings you in today?",
    "When did your symptoms start and how have they changed?",
    "Do you have any other symptoms?",
    "Do you have any past medical history or take any medications?",
    "Tell me about your social history: smoking, alcohol, work and travel.",
    "Anything else on review of systems, such as fever, weight loss, pain or bleeding?",
)


class Policy(Protocol):
    def act(self, observation: str, info: Mapping[str, Any]) -> str: ...


class RetrievalPatient:
    """Answers from the case sheet by BM25 similarity between the question and its sentences."""

    def __init__(self, top_k: int = 2):
        self.top_k = top_k
        self._case: Case | None = None

    def _index(self, case: Case) -> None:
        self._case = case
        self._sentences = [s for key, text in case.patient.items() for s in sentences(text) if key != "Demographics"]
        demographics = case.patient.get("Demographics", "")
        # each sentence is indexed with its field name, so "social history" finds that field
        labelled = [
            f"{key.replace('_', ' ')} {s}"
            for key, text in case.patient.items()
            for s in sentences(text)
            if key != "Demographics"
        ]
        self._bm25 = BM25Index(labelled)
        self._opening = (sentences(case.patient.get("History", "")) or self._sentences or [demographics])[0]

    def act(self, observation: str, info: Mapping[str, Any]) -> str:
        case = info["case"]
        if case is not self._case:
            self._index(case)
        scores = self._bm25.scores(info.get("message", ""))
        order = [int(i) for i in np.argsort(-scores, kind="stable")[: self.top_k] if scores[i] > 0]
        if not order:
            return self._opening
        return " ".join(self._sentences[i] for i in sorted(order))


class MeasurementAgent:
    """The case's result of the requested test, or normal readings when it is not listed."""

    def act(self, observation: str, info: Mapping[str, Any]) -> str:
        result = info["case"].test_result(info.get("message", ""))
        return NORMAL_RESULT if result is None else f"RESULTS: {result}"


class RulesModerator:
    """`moderator.judge` on the correct and the proposed diagnosis; the reply says the rule."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        self.threshold = threshold

    def act(self, observation: str, info: Mapping[str, Any]) -> str:
        match = re.search(r"Doctor's diagnosis: (.*)", info.get("message", ""))
        proposed = match.group(1).strip() if match else ""
        if proposed == "(none)":
            proposed = ""
        verdict = judge(info["case"].diagnosis, proposed, self.threshold)
        return f"{'Yes' if verdict.correct else 'No'} (rule: {verdict.rule}, similarity {verdict.similarity:.3f})"


class RetrievalDoctor:
    """Fixed history protocol, then the offered tests, then the most similar pool diagnosis."""

    def __init__(self, diagnoses: list[str], protocol: tuple[str, ...] = HISTORY_PROTOCOL):
        self.pool = sorted(set(diagnoses))
        self.protocol = protocol
        self._index = TfidfIndex(self.pool)

    def plan(self, tests: list[str], max_turns: int) -> list[str]:
        """The utterances before the diagnosis: questions then test requests, cut to `max_turns - 1`."""
        steps = list(self.protocol) + [f"REQUEST TEST: {name.replace('_', ' ')}" for name in tests]
        return steps[: max(max_turns - 1, 0)]

    def rank(self, findings: str) -> list[tuple[str, float]]:
        scores = self._index.similarity(findings)
        order = np.argsort(-scores, kind="stable")
        return [(self.pool[i], float(scores[i])) for i in order]

    def act(self, observation: str, info: Mapping[str, Any]) -> str:
        plan = self.plan(list(info["tests_offered"]), int(info["max_turns"]))
        turn = int(info["turn"])
        if turn < len(plan):
            return plan[turn]
        findings = " ".join([info.get("objective", ""), *info.get("heard", [])])
        return f"DIAGNOSIS READY: {self.rank(findings)[0][0]}"


@dataclass(frozen=True)
class Episode:
    """The outcome of one case: transcript, proposed diagnosis, the moderator's verdict."""

    case_index: int
    transcript: tuple[Turn, ...]
    diagnosis: str
    correct: bool
    doctor_turns: int
    tests_requested: tuple[str, ...]


def doctor_info(env: ClinicEnv) -> dict[str, Any]:
    """The doctor's structured view: `infos["doctor"]` plus its turn, budget, objective and
    the replies it heard (patient answers and test results)."""
    heard = [t.text for t in env.transcript if t.speaker in ("patient", "measurement")]
    return {
        **env.infos["doctor"],
        "turn": env.doctor_turns,
        "max_turns": env.max_turns,
        "objective": env.case.objective,
        "heard": heard,
    }


def play(env: ClinicEnv, policies: Mapping[str, Policy], case_index: int, seed: int | None = None) -> Episode:
    """Play one case to the moderator's verdict with one policy per agent."""
    env.reset(seed=seed, options={"case_index": case_index})
    for agent in env.agent_iter():
        _, _, termination, truncation, _ = env.last(observe=False)
        if termination or truncation:
            env.step(None)
            continue
        info = doctor_info(env) if agent == "doctor" else dict(env.infos[agent])
        info["messages"] = env.messages(agent)
        env.step(policies[agent].act(env.observe(agent), info))
    return Episode(
        case_index=case_index,
        transcript=tuple(env.transcript),
        diagnosis=env.diagnosis or "",
        correct=bool(env.correct),
        doctor_turns=env.doctor_turns,
        tests_requested=tuple(env.tests_requested),
    )
