"""check_grads results report as certifications do: one results model, Markdown for a
CI step summary, HTML and JUnit XML, written at the end of a pytest session."""

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradcert.check.result import CheckResult, Mismatch, check_id
from gradcert.reports import to_html, to_junit, to_markdown
from gradcert.results import Results, merge_records

FUNCTIONS = Path(__file__).resolve().parent / "user_functions"


def _failed(name="Softplus.apply"):
    m = Mismatch("gradient", 0, (3,), "output 0 [3]", 1.0, 0.0, 2e-16, 1.0, 1.0)
    return CheckResult("failed", name, "torch", "float64", (m,), nodes=40, checked=9,
                       examples=5, reproducer=Path("rep/softplus.py"))


def _passed(name="mlp_loss"):
    return CheckResult("passed", name, "torch", "float64", nodes=400, checked=30,
                       examples=17, extra={"of_bound": 0.03})


def test_a_check_is_a_property_of_the_results_model():
    rec = _failed().to_record("tests/test_f.py::test_softplus", 0.5)
    (p,) = merge_records([rec])
    assert p.id == check_id("Softplus.apply") == "check.softplus_apply"
    assert p.level == "check" and p.outcome == "failed" and p.graphs_checked == 5
    assert p.severity.klass == "wrong derivative" and p.severity.ratio == 0.5e16
    assert p.failure["expected"] == 1.0 and p.failure["actual"] == 0.0
    assert p.reproducer == "rep/softplus.py"
    assert p.notes["tests"] == {"tests/test_f.py::test_softplus": "failed"}
    assert merge_records([_passed().to_record()])[0].worst["of_bound"] == 0.03


def test_the_checks_of_one_function_in_several_tests_fold_into_one_row():
    recs = [_passed("f").to_record("t.py::test_a"), _failed("f").to_record("t.py::test_b")]
    (p,) = merge_records(recs)
    assert p.outcome == "failed" and p.graphs_checked == 22
    assert p.notes["tests"] == {"t.py::test_a": "passed", "t.py::test_b": "failed"}


def test_check_results_render_without_certify_s_levels_profile_or_seed():
    r = Results("check_grads", merge_records([_failed().to_record(), _passed().to_record()]),
                kind="check_grads", profile="-")
    assert list(r.levels()) == ["check"] and r.verdict == "failed"
    md = to_markdown(r)
    assert md.startswith("# gradcert check_grads `check_grads`: **FAILED**")
    assert "check.softplus_apply" in md and "wrong derivative" in md
    assert "profile" not in md.splitlines()[2] and "seed" not in md.splitlines()[2]
    assert "ops" not in r.levels()
    page = to_html(r)
    assert "check.mlp_loss" in page and "wrong derivative" in page
    suite = ET.fromstring(to_junit(r).split("?>", 1)[1])
    cases = {c.get("name"): [e.tag for e in c] for c in suite.iter("testcase")}
    assert cases == {"check.softplus_apply": ["failure"], "check.mlp_loss": []}
    assert suite.get("failures") == "1" and suite.get("tests") == "2"
    again = Results.from_json(r.to_json())
    assert again.kind == "check_grads" and again.to_dict() == r.to_dict()


def test_a_certification_keeps_its_levels_and_kind():
    r = Results("gradcert", [])
    assert r.kind == "certify" and "kind" not in r.to_dict()
    assert list(r.levels())[:2] == ["ops", "graphs"]


def test_an_unknown_kind_is_refused():
    from gradcert.results import ResultsError

    with pytest.raises(ResultsError, match="kind 'checks' is not one of"):
        Results("x", kind="checks")


SESSION = """
import pytest
import torch
from user_functions.torch_fns import Softplus, SoftplusThresholdBug

X = torch.tensor([-3.0, 0.5, 25.0], dtype=torch.float64, requires_grad=True)


def test_correct(gradcert_grads):
    gradcert_grads(Softplus.apply, (X,), examples=0)


def test_buggy(gradcert_grads):
    gradcert_grads(SoftplusThresholdBug.apply, (X,), examples=0)


def test_plain(gradcert_grads):
    gradcert_grads(lambda x: (x * x).exp(), [0.5], examples=0)
"""


@pytest.mark.e2e
def test_a_pytest_session_writes_check_reports_for_ci(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "test_fns.py").write_text(textwrap.dedent(SESSION))
    (tmp_path / "none.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADCERT_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(FUNCTIONS.parent), env.get("PYTHONPATH", "")])
    out = tmp_path / "rep"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-c", str(tmp_path / "none.ini"), "--rootdir", str(tmp_path), "--no-header",
         f"--gradcert-out={out}", str(tmp_path / "test_fns.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "gradcert: check_grads FAILED: 3 functions" in run.stdout
    r = Results.load(out / "checks.json")
    outcomes = {p.id: p.outcome for p in r.properties}
    assert outcomes == {"check.user_functions_torch_fns_softplus_apply": "passed",
                        "check.user_functions_torch_fns_softplusthresholdbug_apply": "failed",
                        "check.test_fns_test_plain_locals_lambda": "passed"}
    bad = r.property("check.user_functions_torch_fns_softplusthresholdbug_apply")
    assert bad.severity.klass == "wrong derivative"
    assert "test_fns.py::test_buggy" in bad.notes["tests"]
    md = (out / "checks.md").read_text()
    assert "softplusthresholdbug_apply" in md and "FAILED" in md.splitlines()[0]
    junit = ET.parse(out / "checks.junit.xml").getroot()
    assert junit.get("failures") == "1" and junit.get("tests") == "3"
    assert "<html" in (out / "checks.html").read_text()[:200].lower()
    rows = [json.loads(line) for f in (out / "checks").glob("*.jsonl")
            for line in f.read_text().splitlines()]
    assert len(rows) == 3
