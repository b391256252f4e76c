"""certify's bookkeeping around the pytest session, without running one: what each
pytest exit code means, and junit.xml brought in line with the verdict table."""

import xml.etree.ElementTree as ET

import pytest

from gradcert.certify import (
    CertifyError,
    Interrupted,
    _check_session,
    _Collector,
    _junit_case,
    _junit_matches_verdict,
)

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="gradcert" errors="0" failures="3" skipped="1" tests="5">
<testcase classname="ops" name="test_values[exp]"><failure message="boom">died</failure></testcase>
<testcase classname="ops" name="test_values[add]" />
<testcase classname="ops" name="test_gradients[sub]"><failure message="off">wrong</failure>
</testcase>
<testcase classname="robustness" name="test_deep_chain"><failure message="t">Timeout</failure>
</testcase>
<testcase classname="models" name="test_attention"><skipped message="no exp" /></testcase>
</testsuite></testsuites>
"""


def test_junit_says_what_the_verdict_table_says(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    records = [{"nodeid": "ops.py::test_values[exp]", "outcome": "error"},
               {"nodeid": "ops.py::test_values[add]", "outcome": "passed"},
               {"nodeid": "ops.py::test_gradients[sub]", "outcome": "failed"},
               {"nodeid": "robustness.py::test_deep_chain", "outcome": "timeout"},
               {"nodeid": "models.py::test_attention", "outcome": "unsupported"}]
    _junit_matches_verdict(path, records)
    suite = ET.parse(path).getroot().find("testsuite")
    tags = {c.get("name"): [e.tag for e in c] for c in suite.iter("testcase")}
    assert tags == {"test_values[exp]": ["error"], "test_values[add]": [],
                    "test_gradients[sub]": ["failure"], "test_deep_chain": ["error"],
                    "test_attention": ["skipped"]}
    exp = suite.find("testcase[@name='test_values[exp]']/error")
    assert exp.text == "died" and exp.get("message") == "error: boom"
    assert (suite.get("errors"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "1")


def test_a_junit_file_that_is_not_there_is_left_alone(tmp_path):
    _junit_matches_verdict(tmp_path / "none.xml", [])
    assert not (tmp_path / "none.xml").exists()


def test_junit_names_follow_pytest():
    assert _junit_case("ops.py::test_values[add]") == ("ops", "test_values[add]")
    assert _junit_case("sub/dir/x.py::test_a[p/q]") == ("sub.dir.x", "test_a[p/q]")


@pytest.mark.parametrize("code, error, says", [
    (5, CertifyError, "-k 'nothing' selects no property"),
    (3, CertifyError, "could not run (pytest exit code 3)"),
    (4, CertifyError, "could not run (pytest exit code 4)"),
    (7, CertifyError, "exit code 7"),
])
def test_only_a_finished_session_gives_a_verdict(code, error, says):
    with pytest.raises(error, match=says.replace("(", r"\(").replace(")", r"\)")):
        _check_session(code, _Collector(), "nothing")
    _check_session(0, _Collector(), None)
    _check_session(1, _Collector(), None)
    _check_session(2, _Collector(), None)  # interrupted: what ran is still written


def test_an_interrupted_session_is_its_own_error():
    assert issubclass(Interrupted, CertifyError)


def test_the_collector_is_a_plugin_pytest_can_keep_in_a_set():
    assert len({_Collector(), _Collector()}) == 2
