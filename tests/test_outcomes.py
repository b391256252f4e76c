"""Every property gets an outcome: what certify records for tests that crashed their
worker or never ran, in results and in junit.xml; a half-run property is not passed."""

import xml.etree.ElementTree as ET
from types import SimpleNamespace

from gradcert.certify import _Collector, _missing, _write_junit_not_run
from gradcert.properties.registry import PROPERTIES
from gradcert.results import Results, merge_records


def report(nodeid, outcome, longrepr=""):
    return SimpleNamespace(nodeid=nodeid, passed=outcome == "passed",
                           skipped=outcome == "skipped", failed=outcome == "failed",
                           longrepr=longrepr, duration=0.5, when="call")


def test_tests_without_records_get_outcomes_and_the_rest_not_run():
    c = _Collector()
    c._saw(["ops.py::test_values[exp]", "ops.py::test_values[log]", "graphs.py::test_oracle",
            "semantics.py::test_zero_grad"])
    c.reports["ops.py::test_values[exp]"] = report(
        "ops.py::test_values[exp]", "failed", "[gw0] node down: worker 'gw0' crashed while "
                                              "running 'ops.py::test_values[exp]'")
    c.reports["semantics.py::test_zero_grad"] = report("semantics.py::test_zero_grad",
                                                       "skipped")
    records = [{"id": "graphs.oracle", "nodeid": "graphs.py::test_oracle",
                "outcome": "passed", "graphs_checked": 20}]
    found = {r["nodeid"]: r for r in _missing(records, c, "values or oracle or zero_grad")}
    assert found["ops.py::test_values[exp]"]["outcome"] == "crashed"
    assert "worker" in found["ops.py::test_values[exp]"]["failure"]["message"]
    assert found["ops.py::test_values[log]"]["outcome"] == "not run"
    assert found["ops.py::test_values[log]"]["item"] == "log"
    assert found["semantics.py::test_zero_grad"]["outcome"] == "unsupported"
    assert "graphs.py::test_oracle" not in found  # it wrote its own record
    # half run: a passed item and a not-run one make the property not run, not passed
    merged = {p.id: p for p in merge_records(records + list(found.values()))}
    assert merged["ops.values"].outcome == "crashed"
    assert merged["graphs.oracle"].outcome == "passed"
    assert Results("gradcert", list(merged.values())).verdict == "failed"


def test_without_a_selection_every_property_has_an_outcome():
    records = [{"id": "ops.values", "nodeid": "ops.py::test_values[log]",
                "outcome": "passed"}]
    out = _missing(records, _Collector(), None)
    ids = {r["id"] for r in records + out}
    assert ids == set(PROPERTIES)
    assert {r["outcome"] for r in out} == {"not run"}
    half = merge_records(records + [{"id": "ops.values", "nodeid": "ops.py::test_values[exp]",
                                     "outcome": "not run"}])
    assert half[0].outcome == "not run"


def test_junit_gets_an_error_for_every_test_not_run(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text('<?xml version="1.0"?><testsuites><testsuite name="gradcert" tests="1" '
                    'errors="0"><testcase classname="ops" name="test_values[log]" time="1"/>'
                    '</testsuite></testsuites>')
    records = [{"id": "ops.values", "nodeid": "ops.py::test_values[log]", "outcome": "passed"},
               {"id": "ops.values", "nodeid": "ops.py::test_values[exp]",
                "outcome": "not run", "failure": {"message": "not run: interrupted"}}]
    _write_junit_not_run(path, records)
    suite = ET.parse(path).getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"test_values[log]", "test_values[exp]"}
    error = cases["test_values[exp]"].find("error")
    assert error is not None and error.get("type") == "not run"
    assert suite.get("errors") == "1" and suite.get("tests") == "2"
    _write_junit_not_run(tmp_path / "none.xml", records)  # no junit at all: one is written
    assert ET.parse(tmp_path / "none.xml").getroot().find(".//error") is not None
