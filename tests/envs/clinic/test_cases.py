"""The OSCE case loader (gamescale/envs/clinic/cases.py): every bundled case loads, a bad
line is named by file and line, tests are found at any depth."""

from __future__ import annotations

import json

import pytest

from gamescale.envs.clinic.cases import CaseFormatError, load_cases


def test_every_bundled_case_loads_with_its_sections():
    medqa, extended = load_cases("medqa"), load_cases("extended")
    assert (len(medqa), len(extended)) == (107, 214)
    for case in medqa + extended:
        assert case.diagnosis and case.objective and case.patient
        assert all(f.text for f in case.tests + case.exam)
    assert [c.index for c in medqa] == list(range(len(medqa)))
    assert [c.index for c in medqa if not c.tests] == [68, 105]  # empty Test_Results in the file


def _line(**osce) -> str:
    base = {
        "Objective_for_Doctor": "Diagnose",
        "Patient_Actor": {"History": "Cough for a week."},
        "Physical_Examination_Findings": {"Vital_Signs": {"Temperature": "38 C"}},
        "Test_Results": {"Imaging": {"Chest_X-Ray": {"Findings": "Right lower lobe consolidation"}}},
        "Correct_Diagnosis": "Pneumonia",
    }
    base.update(osce)
    return json.dumps({"OSCE_Examination": {k: v for k, v in base.items() if v is not None}})


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"OSCE_Examination": {', r"bad\.jsonl:3: malformed case: not JSON"),
        (_line(Correct_Diagnosis=None), r"bad\.jsonl:3: malformed case: OSCE_Examination lacks Correct_Diagnosis"),
        (_line(Correct_Diagnosis="  "), r"bad\.jsonl:3: .*Correct_Diagnosis is not a non-empty string"),
        (_line(Test_Results=["x"]), r"bad\.jsonl:3: .*Test_Results is not an object"),
        ('{"case": 1}', r"bad\.jsonl:3: .*no OSCE_Examination"),
    ],
)
def test_malformed_line_is_named_by_file_and_line(tmp_path, bad, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([_line(), "", bad, _line()]) + "\n")
    with pytest.raises(CaseFormatError, match=message):
        load_cases(path)


def test_test_results_are_found_at_any_depth_by_normalised_name(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(_line() + "\n")
    (case,) = load_cases(path)
    assert case.test_names == ["Imaging"]
    assert case.test_result("chest x-ray") == "Chest X-Ray > Findings: Right lower lobe consolidation"
    assert case.test_result("IMAGING") == "Imaging > Chest X-Ray > Findings: Right lower lobe consolidation"
    assert case.test_result("temperature") == "Temperature: 38 C"  # physical examination
    assert case.test_result("Lumbar puncture") is None


def test_unknown_case_set_is_an_error():
    with pytest.raises(ValueError, match="neither medqa nor extended nor a file"):
        load_cases("no-such-set")
