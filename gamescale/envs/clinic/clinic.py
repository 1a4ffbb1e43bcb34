"""The clinic as a PettingZoo AEC environment with text observations and actions.

One episode is one OSCE case. Four agents take turns:

* `doctor` (the policy under evaluation) speaks first and after every answer. Its text is
  a question for the patient, `REQUEST TEST: <name>` for the measurement agent, or
  `DIAGNOSIS READY: <diagnosis>` for the moderator. It has `max_turns` utterances; at the
  last one it is told to diagnose, and an utterance there that is not a diagnosis is
  judged as no diagnosis.
* `patient` answers a question. Whatever policy plays it, the environment withholds any
  sentence of its answer that names the diagnosis or repeats a test result (`guard`).
* `measurement` answers a test request: the case's result for a listed test, else
  "RESULTS: normal readings" (the rules policy in `agents.py` does exactly that).
* `moderator` answers "Yes" or "No" to "is the doctor's diagnosis the correct one?";
  the episode ends after it with reward 1 to the doctor for "Yes", 0 otherwise.

Observations are text: each agent's prompt (its role, its part of the case, and the
dialogue so far as it heard it); `messages(agent)` gives the same as chat messages for
chat models. `infos[agent]` carries structured views for rule-based agents: the doctor's
offered tests and turns left, the case itself for the simulator roles (patient,
measurement, moderator), and the text addressed to the agent (`message`).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from gymnasium.spaces import Text
from pettingzoo import AECEnv

from gamescale.envs.clinic.cases import Case
from gamescale.envs.clinic.text import normalise, sentences

AGENTS = ("doctor", "patient", "measurement", "moderator")
TEST_PATTERN = re.compile(r"REQUEST TEST\s*:\s*(.+)", re.IGNORECASE)
DIAGNOSIS_PATTERN = re.compile(r"DIAGNOSIS READY\s*:\s*(.+)", re.IGNORECASE)
NORMAL_RESULT = "RESULTS: normal readings"
WITHHELD = "[withheld]"

# Bias prompts (our wording of the cognitive and implicit biases AgentClinic studies); they
# go into the system prompt of a model-played doctor or patient. Rule-based agents ignore them.
DOCTOR_BIASES = {
    "recency": "Recently you saw several patients with similar symptoms whose diagnosis was a common viral illness.",
    "frequency": "You believe that most patients you see have the most common condition for their symptoms.",
    "confirmation": "You form a diagnosis early and look mainly for evidence that supports it.",
    "false_consensus": "You assume other doctors would agree with your first impression.",
    "status_quo": "You prefer the diagnosis this patient was given in the past.",
}
PATIENT_BIASES = {
    "self_diagnosis": "You have read online that your symptoms mean cancer and you keep bringing it up.",
    "recency": "A friend recently had similar symptoms and was told it was nothing serious.",
    "distrust": "You distrust doctors and answer only what you are asked, briefly.",
    "anxiety": "You are very anxious and worry that every symptom is serious.",
}


@dataclass(frozen=True)
class Turn:
    """One utterance: `speaker` is an agent name; `kind` is question, answer, test, result,
    diagnosis or judgement."""

    speaker: str
    kind: str
    text: str


def parse_doctor(text: str) -> tuple[str, str]:
    """('diagnosis', name) | ('test', name) | ('question', text) for a doctor utterance."""
    match = DIAGNOSIS_PATTERN.search(text)
    if match:
        return "diagnosis", match.group(1).strip().splitlines()[0].strip(" .")
    match = TEST_PATTERN.search(text)
    if match:
        return "test", match.group(1).strip().splitlines()[0].strip(" .")
    return "question", text.strip()


def guard(answer: str, case: Case, min_words: int = 3) -> str:
    """The patient's answer without any sentence that names the diagnosis or contains a test
    result of at least `min_words` words (shorter results such as "Normal" are too common)."""
    secrets = [normalise(case.diagnosis)]
    secrets += [r for r in (normalise(t) for t in case.result_texts()) if len(r.split()) >= min_words]
    kept = []
    for sentence in sentences(answer) or [answer]:
        text = normalise(sentence)
        kept.append(WITHHELD if any(s and s in text for s in secrets) else sentence)
    return " ".join(kept)


def _charset(cases: list[Case]) -> str:
    chars = set(string.printable)
    for case in cases:
        for text in (
            case.objective,
            case.diagnosis,
            *case.patient.values(),
            *(f.render() for f in case.exam + case.tests),
        ):
            chars.update(text)
    return "".join(sorted(chars))


class ClinicEnv(AECEnv):
    """An AEC clinic over a list of cases; `reset(options={"case_index": i})` picks the case
    (default: `seed % len(cases)`, or case 0 without a seed)."""

    metadata = {"name": "clinic_v0", "render_modes": ["ansi"], "is_parallelizable": False}

    def __init__(
        self,
        cases: list[Case],
        max_turns: int = 20,
        doctor_bias: str | None = None,
        patient_bias: str | None = None,
        max_chars: int = 2000,
        case_set: str = "custom",
        render_mode: str | None = None,
    ):
        super().__init__()
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        if doctor_bias is not None and doctor_bias not in DOCTOR_BIASES:
            raise ValueError(f"unknown doctor bias {doctor_bias!r}; known: {', '.join(DOCTOR_BIASES)}")
        if patient_bias is not None and patient_bias not in PATIENT_BIASES:
            raise ValueError(f"unknown patient bias {patient_bias!r}; known: {', '.join(PATIENT_BIASES)}")
        self.cases = cases
        self.case_set = case_set
        self.max_turns = max_turns
        self.doctor_bias = doctor_bias
        self.patient_bias = patient_bias
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        charset = _charset(cases)
        self._action_space = Text(max_length=max_chars, min_length=0, charset=charset)
        self._observation_space = Text(max_length=1_000_000, min_length=0, charset=charset)
        self.case: Case = cases[0]
        self.agents = []

    def observation_space(self, agent: str) -> Text:
        return self._observation_space

    def action_space(self, agent: str) -> Text:
        return self._action_space

    # ---------------------------------------------------------------- episode

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        options = options or {}
        index = options.get("case_index", 0 if seed is None else seed % len(self.cases))
        if not 0 <= int(index) < len(self.cases):
            raise ValueError(f"case_index {index} is outside 0..{len(self.cases) - 1}")
        self.case = self.cases[int(index)]
        self.agents = list(AGENTS)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.transcript: list[Turn] = []
        self.doctor_turns = 0
        self.tests_requested: list[str] = []
        self.diagnosis: str | None = None
        self.correct: bool | None = None
        self.agent_selection = "doctor"
        self._pending = ""  # the text addressed to the agent to move
        self._update_infos()

    def _update_infos(self) -> None:
        case = self.case
        self.infos = {
            "doctor": {
                "tests_offered": case.test_names,
                "turns_left": self.max_turns - self.doctor_turns,
                "message": self._pending if self.agent_selection == "doctor" else "",
            },
            "patient": {"case": case, "message": self._pending if self.agent_selection == "patient" else ""},
            "measurement": {"case": case, "message": self._pending if self.agent_selection == "measurement" else ""},
            "moderator": {"case": case, "message": self._pending if self.agent_selection == "moderator" else ""},
        }

    def step(self, action: str | None) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        text = "" if action is None else str(action)
        self._clear_rewards()
        if agent == "doctor":
            self.doctor_turns += 1
            kind, content = parse_doctor(text)
            if self.doctor_turns >= self.max_turns and kind != "diagnosis":
                kind, content = "diagnosis", ""
            self.transcript.append(Turn("doctor", kind, text))
            if kind == "diagnosis":
                self.diagnosis = content
                self._pending = self._moderator_question(content)
                self.agent_selection = "moderator"
            elif kind == "test":
                self.tests_requested.append(content)
                self._pending = content
                self.agent_selection = "measurement"
            else:
                self._pending = content
                self.agent_selection = "patient"
        elif agent == "patient":
            answer = guard(text, self.case)
            self.transcript.append(Turn("patient", "answer", answer))
            self._pending = answer
            self.agent_selection = "doctor"
        elif agent == "measurement":
            self.transcript.append(Turn("measurement", "result", text))
            self._pending = text
            self.agent_selection = "doctor"
        else:  # moderator
            self.correct = normalise(text).startswith("yes")
            self.transcript.append(Turn("moderator", "judgement", text))
            self.rewards["doctor"] = 1.0 if self.correct else 0.0
            self.terminations = {a: True for a in self.agents}
            self._pending = ""
            self.agent_selection = "doctor"
        self._accumulate_rewards()
        self._update_infos()

    def _moderator_question(self, proposed: str) -> str:
        return f"Correct diagnosis: {self.case.diagnosis}\nDoctor's diagnosis: {proposed or '(none)'}"

    # ---------------------------------------------------------------- text views

    def system_prompt(self, agent: str) -> str:
        case = self.case
        if agent == "doctor":
            bias = f" {DOCTOR_BIASES[self.doctor_bias]}" if self.doctor_bias else ""
            return (
                "You are a doctor examining a patient. Ask one question at a time. To order a test write "
                "'REQUEST TEST: <test name>'. When you know the diagnosis write 'DIAGNOSIS READY: <diagnosis>'. "
                f"You may speak {self.max_turns} times.{bias} Objective: {case.objective}"
                f" Tests available: {', '.join(t.replace('_', ' ') for t in case.test_names) or 'none'}."
            )
        if agent == "patient":
            bias = f" {PATIENT_BIASES[self.patient_bias]}" if self.patient_bias else ""
            sheet = "\n".join(f"{k.replace('_', ' ')}: {v}" for k, v in case.patient.items())
            return (
                "You are a patient talking to a doctor. Answer only from your sheet, briefly, in the first "
                f"person. You do not know your diagnosis or any test result.{bias}\nYour sheet:\n{sheet}"
            )
        if agent == "measurement":
            results = "\n".join(f.render() for f in case.exam + case.tests)
            return (
                f"You report test results. Answer 'RESULTS: <result>' for the requested test from these "
                f"findings, or '{NORMAL_RESULT}' if it is not listed.\n{results}"
            )
        return "You judge whether the doctor's diagnosis names the same condition as the correct one. Answer Yes or No."

    def messages(self, agent: str) -> list[dict[str, str]]:
        """The chat messages of `agent`'s next utterance: its system prompt, then the turns it
        took part in, its own as "assistant" and the other side's as "user"."""
        out = [{"role": "system", "content": self.system_prompt(agent)}]
        if agent == "moderator":
            return [*out, {"role": "user", "content": self._pending}]
        partner = {"patient": ("question",), "measurement": ("test",)}
        for turn in self.transcript:
            if agent == "doctor":
                if turn.speaker == "doctor":
                    out.append({"role": "assistant", "content": turn.text})
                elif turn.speaker in ("patient", "measurement"):
                    out.append({"role": "user", "content": turn.text})
            elif turn.speaker == "doctor" and turn.kind in partner[agent]:
                out.append({"role": "user", "content": turn.text})
            elif turn.speaker == agent:
                out.append({"role": "assistant", "content": turn.text})
        if agent == "doctor" and self.doctor_turns == self.max_turns - 1:
            out.append({"role": "user", "content": "This is your last turn: write DIAGNOSIS READY: <diagnosis>."})
        return out

    def observe(self, agent: str) -> str:
        return render_messages(self.messages(agent))

    def render(self) -> str:
        return "\n".join(f"{t.speaker.upper()}: {t.text}" for t in self.transcript)

    def close(self) -> None:
        pass


def render_messages(messages: list[dict[str, str]]) -> str:
    """Chat messages as one plain prompt ("System: ...", "User: ...", "Assistant: ..."), ending
    with "Assistant:" for the next reply; the prompt of models without a chat template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])
