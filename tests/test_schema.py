"""results.json against its JSON Schema (gradcert/results.schema.json)."""

import copy
import json
from pathlib import Path

import pytest
from report_data import synthetic

from gradcert.cli import main
from gradcert.results import Results

jsonschema = pytest.importorskip("jsonschema")

SCHEMA = json.loads((Path(__file__).parents[1] / "gradcert" / "results.schema.json").read_text())
SAMPLE = json.loads((Path(__file__).parent / "data" / "results_sample.json").read_text())


def _errors(doc):
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.e2e
def test_a_real_certification_validates(tmp_path):
    out = tmp_path / "report"
    code = main(["certify", "--profile", "quick", "--seed", "3", "--out", str(out),
                 "-k", "ops or semantics"])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert _errors(doc) == []
    assert doc["properties"] and doc["samples"]
    whole = [s for s in doc["samples"] if s["op"] is None]
    assert whole and all(s["nodes"] >= 1 for s in whole), "whole-graph errors carry sizes"
    fractions = [float(s["of_bound"]) for s in doc["samples"] if "of_bound" in s]
    assert fractions and max(fractions) <= 1.0, "a certified engine stays inside its bounds"


def test_sample_and_merged_documents_validate():
    assert _errors(SAMPLE) == []
    sample = Results.from_dict(SAMPLE)
    assert _errors(sample.to_dict()) == []
    assert _errors(Results.merge([sample, sample]).to_dict()) == []


def test_severity_root_cause_and_every_outcome_validate():
    doc = synthetic().to_dict()
    assert {p["outcome"] for p in doc["properties"]} >= {"crashed", "not run", "timeout"}
    assert _errors(doc) == []
    doc["properties"][0]["failure"]["severity"]["class"] = "bad"
    assert any("severity" in e for e in _errors(doc))


@pytest.mark.parametrize("break_it, where", [
    (lambda d: d.update(verdict="maybe"), "verdict"),
    (lambda d: d["properties"][0].update(outcome="skipped"), "properties/0/outcome"),
    (lambda d: d.pop("target"), "target"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d["samples"][0].update(kind="hessian"), "samples/0/kind"),
])
def test_the_schema_rejects_broken_documents(break_it, where):
    doc = copy.deepcopy(SAMPLE)
    break_it(doc)
    errors = _errors(doc)
    assert errors and any(e.startswith(where) or where in e for e in errors), errors
