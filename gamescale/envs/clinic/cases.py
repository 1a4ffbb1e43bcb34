"""OSCE cases in AgentClinic's JSON-lines form: a typed model and a loader that names the
file and line of a malformed case.

One line is `{"OSCE_Examination": {"Objective_for_Doctor": str, "Patient_Actor": {...},
"Physical_Examination_Findings": {...}, "Test_Results": {...}, "Correct_Diagnosis": str}}`.
Nested sections are kept as `Finding`s: (key path, text) leaves in file order, so the
measurement agent can answer for a test named at any depth ("Chest_CT" inside "Imaging").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gamescale.envs.clinic.text import normalise

DATA_DIR = Path(__file__).parent / "data"
CASE_SETS = {"medqa": "agentclinic_medqa.jsonl", "extended": "agentclinic_medqa_extended.jsonl"}
_REQUIRED = (
    "Objective_for_Doctor",
    "Patient_Actor",
    "Physical_Examination_Findings",
    "Test_Results",
    "Correct_Diagnosis",
)


class CaseFormatError(ValueError):
    """A case file line that is not a valid OSCE case; the message names file and line."""


@dataclass(frozen=True)
class Finding:
    """One leaf of a nested section: `path` is its keys from the section down, `text` its value."""

    path: tuple[str, ...]
    text: str

    def render(self) -> str:
        return f"{' > '.join(p.replace('_', ' ') for p in self.path)}: {self.text}"


@dataclass(frozen=True)
class Case:
    """One OSCE case. `patient` maps each Patient_Actor field (History, Symptoms, ...) to its
    text; `exam` and `tests` are the leaves of Physical_Examination_Findings and Test_Results."""

    index: int
    source: str
    objective: str
    patient: dict[str, str]
    exam: tuple[Finding, ...]
    tests: tuple[Finding, ...]
    diagnosis: str

    @property
    def test_names(self) -> list[str]:
        """The tests this case offers: the top-level keys of Test_Results, in file order."""
        return list(dict.fromkeys(f.path[0] for f in self.tests))

    def test_result(self, name: str) -> str | None:
        """The result of test `name` (a key at any depth of Test_Results or the physical
        examination, matched on normalised names), or None when the case does not list it."""
        wanted = normalise(name)
        if not wanted:
            return None
        if wanted in ("physical examination", "physical exam"):
            return "; ".join(f.render() for f in self.exam) or None
        for section in (self.tests, self.exam):
            for depth in range(4):
                leaves = [f for f in section if len(f.path) > depth and normalise(f.path[depth]) == wanted]
                if leaves:
                    head = leaves[0].path[: depth + 1]
                    same = [f for f in leaves if f.path[: depth + 1] == head]
                    return "; ".join(Finding(f.path[depth:], f.text).render() for f in same)
        return None

    def result_texts(self) -> list[str]:
        """Every test result value (for checks that nothing leaks them)."""
        return [f.text for f in self.tests]


def _leaves(value: Any, path: tuple[str, ...] = ()) -> list[Finding]:
    if isinstance(value, dict):
        return [leaf for key, sub in value.items() for leaf in _leaves(sub, (*path, str(key)))]
    if isinstance(value, list):
        return [Finding(path, "; ".join(_text(v) for v in value))] if path else []
    return [Finding(path, _text(value))] if path else []


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f.render() for f in _leaves(value))
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


def parse_case(line: str, index: int, source: str) -> Case:
    """One JSON line -> Case; raises ValueError (without location) on a malformed one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    osce = record.get("OSCE_Examination") if isinstance(record, dict) else None
    if not isinstance(osce, dict):
        raise ValueError("no OSCE_Examination object")
    missing = [key for key in _REQUIRED if key not in osce]
    if missing:
        raise ValueError(f"OSCE_Examination lacks {', '.join(missing)}")
    diagnosis = osce["Correct_Diagnosis"]
    if not isinstance(diagnosis, str) or not normalise(diagnosis):
        raise ValueError("Correct_Diagnosis is not a non-empty string")
    for key in ("Patient_Actor", "Physical_Examination_Findings", "Test_Results"):
        if not isinstance(osce[key], dict):
            raise ValueError(f"{key} is not an object")
    patient = {key: _text(value) for key, value in osce["Patient_Actor"].items()}
    return Case(
        index=index,
        source=source,
        objective=_text(osce["Objective_for_Doctor"]),
        patient=patient,
        exam=tuple(_leaves(osce["Physical_Examination_Findings"])),
        tests=tuple(_leaves(osce["Test_Results"])),
        diagnosis=diagnosis.strip(),
    )


def case_path(case_set: str) -> Path:
    """The bundled file of a named case set ('medqa', 'extended'), or `case_set` as a path."""
    if case_set in CASE_SETS:
        return DATA_DIR / CASE_SETS[case_set]
    path = Path(case_set)
    if not path.is_file():
        raise ValueError(f"case set {case_set!r} is neither {' nor '.join(CASE_SETS)} nor a file")
    return path


def load_cases(case_set: str | Path) -> list[Case]:
    """Every case of a set (blank lines skipped); `CaseFormatError` names file:line of a bad one."""
    path = case_path(str(case_set))
    cases: list[Case] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                cases.append(parse_case(line, len(cases), path.name))
            except ValueError as exc:
                raise CaseFormatError(f"{path}:{number}: malformed case: {exc}") from None
    if not cases:
        raise CaseFormatError(f"{path}: no cases")
    return cases
