"""The clinic environment and its baselines (gamescale/envs/clinic/): what each simulator
role may say, the moderator's rules, the conventions and turn budget, the AEC interface,
and the retrieval doctor against chance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gamescale.envs.clinic import (
    MeasurementAgent,
    RetrievalDoctor,
    RetrievalPatient,
    RulesModerator,
    judge,
    load_cases,
    parse_doctor,
    play,
)
from gamescale.envs.clinic.agents import HISTORY_PROTOCOL
from gamescale.envs.clinic.clinic import NORMAL_RESULT, WITHHELD, guard
from gamescale.envs.clinic.moderator import canonical
from gamescale.envs.clinic.text import normalise
from gamescale.envs.registry import make_env

MEDQA = load_cases("medqa")
ALL = MEDQA + load_cases("extended")
POOL = sorted({c.diagnosis for c in ALL})


def baseline(pool=POOL):
    return {
        "doctor": RetrievalDoctor(pool),
        "patient": RetrievalPatient(),
        "measurement": MeasurementAgent(),
        "moderator": RulesModerator(),
    }


def _secrets(case):
    return normalise(case.diagnosis), [r for r in map(normalise, case.result_texts()) if len(r.split()) >= 3]


def test_patient_never_says_the_diagnosis_or_a_test_result():
    """The retrieval patient, asked the protocol, for its diagnosis and for every test."""
    patient = RetrievalPatient()
    asked = [*HISTORY_PROTOCOL, "What is your diagnosis?", "What did your tests show?"]
    for case in ALL:
        diagnosis, results = _secrets(case)
        for question in asked + [t.replace("_", " ") for t in case.test_names]:
            answer = normalise(guard(patient.act("", {"case": case, "message": question}), case))
            assert answer and diagnosis not in answer, (case.index, question)
            assert not any(r in answer for r in results), (case.index, question)


def test_environment_withholds_what_a_leaky_patient_says():
    """A patient played by anything (here: one that recites its case) is guarded by the env."""

    class Leaky:
        def act(self, observation, info):
            case = info["case"]
            return f"I have {case.diagnosis}. My results: {case.tests[0].text}. I feel tired."

    env = make_env("clinic")
    policies = {**baseline(), "patient": Leaky()}
    for index in range(0, len(env.cases), 10):
        episode = play(env, policies, index)
        case = env.cases[index]
        diagnosis, results = _secrets(case)
        for turn in episode.transcript:
            if turn.speaker == "patient":
                text = normalise(turn.text)
                assert diagnosis not in text and not any(r in text for r in results)
                assert WITHHELD in turn.text and "I feel tired." in turn.text


def test_measurement_returns_exactly_the_listed_result_and_normal_otherwise():
    agent = MeasurementAgent()
    for case in ALL:
        for name in case.test_names:
            leaves = [f for f in case.tests if f.path[0] == name]
            expected = "RESULTS: " + "; ".join(f.render() for f in leaves)
            assert agent.act("", {"case": case, "message": name.replace("_", " ").upper()}) == expected
        assert agent.act("", {"case": case, "message": "Serum unobtanium level"}) == NORMAL_RESULT


def test_moderator_accepts_the_diagnosis_and_its_normalised_variants():
    for case in ALL:
        d = case.diagnosis
        for variant in (d, d.upper(), f"  {d.lower()}.", f"the {d}", f"{d} (abbrev)"):
            verdict = judge(d, variant)
            assert verdict.correct and verdict.rule == "name", (d, variant)
    assert judge("Hirschsprung disease", "Hirschsprung’s disease").rule == "name"
    assert judge("Myasthenia gravis", "").rule == "no-diagnosis"


# Distinct names in the case files that the similarity rule (0.85) accepts: the same disease
# spelled differently or a subtype; every other pair of distinct diagnoses must be rejected.
SAME_DISEASE = {
    frozenset({"Hemophilia", "Hemophilia A"}),
    frozenset({"Neonatal Respiratory Distress Syndrome (NRDS)", "Respiratory Distress Syndrome"}),
    frozenset({"Progressive multifocal encephalopathy (PML)", "Progressive multifocal leukoencephalopathy"}),
}


def test_moderator_rejects_every_other_cases_diagnosis():
    accepted = set()
    for a, b in itertools.combinations(POOL, 2):
        if canonical(a) == canonical(b):
            continue
        verdict = judge(a, b)
        if verdict.correct:
            accepted.add(frozenset({a, b}))
            assert verdict.rule == "similarity" and verdict.similarity >= 0.85
    assert accepted == SAME_DISEASE
    assert not judge("Type 1 diabetes mellitus", "Type 2 diabetes mellitus").correct  # numbers must agree


def test_doctor_conventions_are_parsed():
    assert parse_doctor("I think so. DIAGNOSIS READY: Lyme disease.") == ("diagnosis", "Lyme disease")
    assert parse_doctor("request test: Chest X-ray\nthanks") == ("test", "Chest X-ray")
    assert parse_doctor("Any fever?") == ("question", "Any fever?")


def test_turn_budget_forces_a_judged_diagnosis():
    env = make_env("clinic", max_turns=1)
    episode = play(env, baseline(), 0)
    assert episode.doctor_turns == 1 and [t.speaker for t in episode.transcript] == ["doctor", "moderator"]
    env = make_env("clinic", max_turns=3)

    class Chatty:
        def act(self, observation, info):
            return "Tell me more."

    episode = play(env, {**baseline(), "doctor": Chatty()}, 0)
    assert episode.doctor_turns == 3 and not episode.correct
    assert episode.transcript[-1].text.startswith("No (rule: no-diagnosis")
    with pytest.raises(ValueError, match="max_turns"):
        make_env("clinic", max_turns=0)


def _random_episode(env, seed: int) -> list[tuple[str, str]]:
    """Play with random Text actions the way PettingZoo's api_test does (api_test itself
    assumes NumPy observations, so its dtype checks do not apply to text spaces)."""
    env.reset(seed=seed)
    for agent in env.possible_agents:
        env.action_space(agent).seed(seed)
    seen = []
    for agent in env.agent_iter(max_iter=100):
        obs, reward, termination, truncation, info = env.last()
        assert env.observation_space(agent).contains(obs) and obs == env.observe(agent)
        assert reward in (0.0, 1.0) and isinstance(info, dict)
        action = None if termination or truncation else env.action_space(agent).sample()
        if action is not None:
            assert env.action_space(agent).contains(action)
            seen.append((agent, action))
        env.step(action)
    assert env.agents == []  # every agent stepped out after the moderator's verdict
    return seen


def test_aec_interface_with_text_spaces():
    env = make_env("clinic", max_turns=4, max_chars=64)
    assert env.possible_agents == ["doctor", "patient", "measurement", "moderator"]
    first = _random_episode(env, 7)
    assert sum(agent == "doctor" for agent, _ in first) == 4 and first[-1][0] == "moderator"
    assert _random_episode(env, 7) == first  # seeded spaces replay the same episode
    env.reset(options={"case_index": 5})
    assert env.agent_selection == "doctor"
    obs = env.observe("doctor")
    assert env.observation_space("doctor").contains(obs) and env.cases[5].objective in obs
    env.step("REQUEST TEST: Complete Blood Count")
    assert env.agent_selection == "measurement"
    env.step(MeasurementAgent().act(env.observe("measurement"), env.infos["measurement"]))
    assert env.agent_selection == "doctor" and env.messages("doctor")[-1]["role"] == "user"
    env.step("DIAGNOSIS READY: " + env.cases[5].diagnosis)
    env.step(RulesModerator().act(env.observe("moderator"), env.infos["moderator"]))
    assert all(env.terminations.values()) and env._cumulative_rewards["doctor"] == 1.0


def test_retrieval_doctor_scores_well_above_chance_on_medqa():
    from gamescale.algorithms.clinic.evaluate import wilson_interval

    env = make_env("clinic", case_set="medqa")
    correct = sum(play(env, baseline(), i).correct for i in range(len(MEDQA)))
    low, _ = wilson_interval(correct, len(MEDQA))
    chance = 1 / len({canonical(c.diagnosis) for c in MEDQA})
    assert low > 10 * chance, (correct, low, chance)


def test_bias_prompts_reach_the_model_prompts_only():
    env = make_env("clinic", doctor_bias="recency", patient_bias="self_diagnosis")
    env.reset(options={"case_index": 0})
    assert "viral illness" in env.observe("doctor") and "cancer" in env.observe("patient")
    with pytest.raises(ValueError, match="unknown doctor bias"):
        make_env("clinic", doctor_bias="nonsense")
    plain = play(make_env("clinic"), baseline(), 0).transcript
    assert play(env, baseline(), 0).transcript == plain


def test_bm25_ranks_the_matching_sentence_first():
    from gamescale.envs.clinic.text import BM25Index, TfidfIndex

    docs = ["the patient smokes a pack a day", "fever and cough for three days", "no allergies"]
    assert int(np.argmax(BM25Index(docs).scores("Do you smoke? smokes"))) == 0
    assert int(np.argmax(TfidfIndex(docs).similarity("coughing with fevers"))) == 1
