"""`gradcert certify` end to end: verdicts, exit codes, the report files, reproducers,
crash isolation, seeds, reproducible ci runs, and certify from a checkout of
gradcert. Each runs the command as a user would, in a subprocess."""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import gradcert
from gradcert.properties.registry import PROPERTIES

pytestmark = pytest.mark.e2e

PLANTED = Path(__file__).resolve().parent / "planted" / "engines"

DIES = """
import os

from .base import Value as Base


class Value(Base):
    def exp(self):
        if self.data > 100.0:
            os._exit(3)  # kills the process, as a crashing C extension would
        return super().exp()
"""


def certify(cwd, *args, timeout=600, **extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    env.update(extra_env)
    return subprocess.run([sys.executable, "-m", "gradcert", "certify", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def engine(tmp_path, name, source=None):
    """Planted engine ``name`` (or ``source``) as ``eng.<name>`` in tmp_path: a copy, so a
    test can fix it. The catalogue's engines build on ``base``, copied alongside."""
    pkg = tmp_path / "eng"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text((PLANTED / "base.py").read_text())
    text = source if source is not None else (PLANTED / f"{name}.py").read_text()
    (pkg / f"{name}.py").write_text(text)
    return f"eng.{name}:Value"


SCHEMA = Path(__file__).resolve().parents[1] / "gradcert" / "results.schema.json"


def results(out):
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema"] == "gradcert.results" and doc["version"] == 1
    if SCHEMA.is_file():  # every document certify writes, failures included, is valid
        jsonschema = pytest.importorskip("jsonschema")
        jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    return doc, {p["id"]: p for p in doc["properties"]}


def test_the_reference_engine_is_certified_with_a_full_report(tmp_path):
    run = certify(tmp_path, "--seed", "5", "-j", "2", "--out", "rep")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc, props = results(tmp_path / "rep")
    assert doc["verdict"] == "certified" and doc["seed"] == 5 and doc["target"] == "gradcert"
    assert set(props) == set(PROPERTIES)
    assert all(p["outcome"] == "passed" for p in props.values())
    assert doc["graphs_per_s"] > 0 and doc["graphs_checked"] > 500
    assert set(doc["levels"].values()) == {"passed"}
    assert doc["ops"]["log"]["grad"]["count"] > 0
    suite = ET.parse(tmp_path / "rep" / "junit.xml").getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) > len(PROPERTIES) and not suite.findall(".//failure")
    assert "verdict: CERTIFIED" in run.stdout and "graphs/s" in run.stdout
    assert not list((tmp_path / "rep").glob("reproducers/*.py"))
    assert "certified" in (tmp_path / "rep" / "report.md").read_text().lower()
    assert (tmp_path / "rep" / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_a_value_class_by_module_attr_fails_with_a_reproducer_that_turns_green(tmp_path):
    target = engine(tmp_path, "sub_grad_sign")
    run = certify(tmp_path, target, "-k", "gradients and sub", "--seed", "1", "-j", "1")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    doc, props = results(tmp_path / "gradcert-report")
    p = props["ops.gradients"]
    assert doc["verdict"] == "failed" and p["outcome"] == "failed"
    assert "the oracle says" in p["failure"]["message"] and "seed: 1" in p["failure"]["message"]
    assert "ops.gradients failed for sub" in run.stdout
    script = tmp_path / p["reproducer"]
    assert script.is_file() and "from eng.sub_grad_sign import Value" in script.read_text()
    suite = ET.parse(tmp_path / "gradcert-report" / "junit.xml").getroot()
    assert len(suite.findall(".//failure")) == 2  # sub and rsubc
    assert subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                          capture_output=True).returncode == 1
    engine(tmp_path, "sub_grad_sign", "from .base import Value\n")  # the defect is fixed
    assert subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("args, says", [
    (["no_such_module:Value"], "no_such_module"),
    (["--profile", "fast"], "--profile: unknown profile 'fast'; known: quick, ci, thorough"),
    (["--seed", "x"], "--seed: the seed must be an integer, 0 or more, got 'x'"),
    (["-j", "-1"], "--jobs: -j must be an integer, 0 or more, got '-1'"),
    (["-k", "no_such_property", "-j", "1"], "-k 'no_such_property' selects no property"),
])
def test_usage_and_import_errors_exit_2_with_one_line(tmp_path, args, says):
    run = certify(tmp_path, *args)
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stderr.strip().splitlines()
    assert lines[-1] == f"gradcert certify: {says}" or says in lines[-1]
    assert "Traceback" not in run.stderr + run.stdout
    assert not (tmp_path / "gradcert-report" / "results.json").exists()


def test_a_bad_environment_variable_exits_2_naming_it(tmp_path):
    run = certify(tmp_path, GRADCERT_EXAMPLE_TIMEOUT="soon")
    assert run.returncode == 2
    assert "GRADCERT_EXAMPLE_TIMEOUT: must be a positive number of seconds" in run.stderr


def test_an_engine_that_kills_its_process_is_crashed_and_the_rest_goes_on(tmp_path):
    target = engine(tmp_path, "dies", DIES)
    run = certify(tmp_path, target, "-k", "values and (exp or add)", "--seed", "2", "-j", "1")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    doc, props = results(tmp_path / "gradcert-report")
    p = props["ops.values"]
    assert p["outcome"] == "crashed"
    assert "exit code 3" in p["failure"]["message"]  # the engine's own exit, in its host
    assert p["failure"]["graph"]["nodes"][-1]["op"] == "exp" and p["reproducer"]
    assert p["notes"]["tests"]["add"] == "passed"  # what finished before is kept
    cases = {c.get("name"): [e.tag for e in c]
             for c in ET.parse(tmp_path / "gradcert-report" / "junit.xml").iter("testcase")}
    assert cases["test_values[exp]"] == ["error"] and cases["test_values[add]"] == []
    assert "crashed" in run.stdout


HANGS = """
from .base import Value as Base


class Value(Base):
    def exp(self):
        if self.data > 100.0:
            while True:
                pass
        return super().exp()
"""


def test_a_hanging_engine_times_out_and_the_rest_goes_on(tmp_path):
    target = engine(tmp_path, "hangs", HANGS)
    run = certify(tmp_path, target, "-k", "values and (exp or log)", "--seed", "2", "-j", "1",
                  GRADCERT_EXAMPLE_TIMEOUT="0.5")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    doc, props = results(tmp_path / "gradcert-report")
    p = props["ops.values"]
    assert p["outcome"] == "timeout" and "more than 0.5 s of CPU" in p["failure"]["message"]
    tests = p["notes"]["tests"]  # -k also selects expm1 and log1p, which it lacks
    assert tests == {"exp": "timeout", "log": "passed", "expm1": "unsupported",
                     "log1p": "unsupported"}


def test_a_seed_reproduces_a_run(tmp_path):
    target = engine(tmp_path, "stale_intermediate_grads")
    graphs = []
    for out in ("a", "b"):
        run = certify(tmp_path, target, "-k", "second_backward", "--seed", "11", "-j", "1",
                      "--out", out)
        assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
        doc, props = results(tmp_path / out)
        graphs.append(props["semantics.second_backward"]["failure"]["graph"])
    assert graphs[0] == graphs[1]


def _without_time(doc):
    """The document without its timestamps and durations (the only things two ci runs
    may differ in)."""
    if isinstance(doc, dict):
        return {k: _without_time(v) for k, v in doc.items()
                if k not in ("started", "duration_s", "graphs_per_s", "nodes_per_s")
                and not k.startswith(("seconds", "cpu_seconds", "nodes_per_"))}
    if isinstance(doc, list):
        return [_without_time(v) for v in doc]
    return doc


# The reference engine without robustness: its chains and large graph are built from
# the seed, not drawn by hypothesis, and are the heaviest part of a run.
@pytest.mark.parametrize("planted, select", [(None, "not robustness"),
                                             ("sub_grad_sign", "graphs or semantics")])
def test_two_ci_runs_write_the_same_results(tmp_path, planted, select):
    target = [engine(tmp_path, planted)] if planted else []
    docs = []
    for _ in range(2):
        run = certify(tmp_path, *target, "--profile", "ci", "-j", "2",
                      *(["-k", select] if select else []))
        assert run.returncode == (1 if planted else 0), run.stdout[-3000:] + run.stderr[-3000:]
        doc, props = results(tmp_path / "gradcert-report")
        assert doc["profile"] == "ci" and doc["seed"] is None
        docs.append(_without_time(doc))
    if planted:
        assert docs[0]["verdict"] == "failed" and "failure" in str(docs[0]["properties"])
    assert docs[0] == docs[1]
    assert "derandomized" in (tmp_path / "gradcert-report" / "report.md").read_text()


def _runner(tmp_path):
    """A script that runs gradcert's command line with the gradcert this interpreter
    imports: unlike ``python -m``, it does not put the current directory first."""
    script = tmp_path / "bin" / "run_gradcert.py"
    script.parent.mkdir()
    script.write_text("import sys\nfrom gradcert.cli import main\nsys.exit(main())\n")
    return script


@pytest.mark.parametrize("install", ["installed", "as this environment has it"])
def test_certify_from_a_checkout_of_gradcert_uses_the_installed_gradcert(tmp_path, install):
    """Run from the root of a checkout whose ``gradcert/`` is not the one installed (a
    copy that refuses to be imported), a ``module:attr`` target there still imports."""
    here = Path(gradcert.__file__).resolve().parent
    checkout = tmp_path / "checkout"
    shutil.copytree(here, checkout / "gradcert", ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "gradcert" / "__init__.py").write_text(
        "raise ImportError('the checkout in the current directory was imported')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    if install == "installed":  # a non-editable install: the package copied to a site dir
        site = tmp_path / "site"
        shutil.copytree(here, site / "gradcert", ignore=shutil.ignore_patterns("__pycache__"))
        env["PYTHONPATH"] = str(site)
    target = engine(checkout, "sub_grad_sign")
    runner = _runner(tmp_path)
    for jobs in ("2", "0"):
        run = subprocess.run([sys.executable, str(runner), "certify", target,
                              "-k", "gradients and sub", "--seed", "1",
                              "-j", jobs, "--out", f"rep{jobs}"],
                             cwd=checkout, capture_output=True, text=True, timeout=600, env=env)
        assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
        doc, props = results(checkout / f"rep{jobs}")
        assert props["ops.gradients"]["outcome"] == "failed"


@pytest.mark.slow
def test_pypi_micrograd_fails_second_backward_and_the_10k_chain(tmp_path):
    pytest.importorskip("micrograd")
    run = certify(tmp_path, "micrograd", "--seed", "1", "-j", "2")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    doc, props = results(tmp_path / "gradcert-report")
    assert props["semantics.second_backward"]["outcome"] == "failed"
    assert "72.0" in props["semantics.second_backward"]["failure"]["message"]
    assert props["robustness.chain_10k"]["outcome"] == "failed"
    # the edge sweep: micrograd's backward raises at its edges (OverflowError for x / y at
    # 1e-300 / 1e-200, whose y ** -2 overflows; ZeroDivisionError for 0.0 ** 0)
    assert props["ops.gradients"]["outcome"] == "error"
    assert "the engine raised" in props["ops.gradients"]["failure"]["message"]
    assert props["models.attention"]["outcome"] == "unsupported"  # no exp, log


@pytest.mark.slow
def test_pytorch_is_certified(tmp_path):
    # under --range normal: by default its d(0 / x)/dx at x = 1e-300 is nan (x * x
    # underflows; exact 0), a range finding
    pytest.importorskip("torch")
    run = certify(tmp_path, "torch", "--seed", "1", "-j", "2", "--range", "normal")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc, props = results(tmp_path / "gradcert-report")
    assert doc["verdict"] == "certified"


STANDALONE = Path(__file__).resolve().parent / "standalone_host.py"


def test_an_engine_behind_a_host_of_its_own_is_certified_through_the_protocol(tmp_path):
    host = f"{sys.executable} {STANDALONE}"
    run = certify(tmp_path, "--host", host, "--seed", "4", "-j", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc, props = results(tmp_path / "gradcert-report")
    assert doc["verdict"] == "certified" and doc["engine"]["name"] == "standalone"
    assert props["optimizer.adam"]["notes"]["optimizer"] == "gradcert's Adam"
    bad = certify(tmp_path, "--host", host + " --bug exp", "-k", "gradients and exp",
                  "--seed", "4", "-j", "1", "--out", "bad")
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
    doc, props = results(tmp_path / "bad")
    p = props["ops.gradients"]
    assert p["outcome"] == "failed"
    script = tmp_path / p["reproducer"]  # it speaks the protocol to the host itself
    assert "HOST_COMMAND" in script.read_text() and "gradcert" not in script.read_text(
        ).split('"""', 2)[2]
    assert subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                          capture_output=True).returncode == 1


def test_reuse_after_backward_leaves_a_reproducer_that_builds_on_the_engine_objects(tmp_path):
    # Through the protocol, as the hardest case: the reproducer must build z = y * x0 on
    # the host's nodes of y (not a fresh graph, where the bug cannot show).
    host = f"{sys.executable} {STANDALONE}"
    bad = certify(tmp_path, "--host", host + " --bug visited", "-k", "reuse_after_backward",
                  "--seed", "4", "-j", "1", "--out", "bad")
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
    doc, props = results(tmp_path / "bad")
    p = props["semantics.reuse_after_backward"]
    assert p["outcome"] == "failed" and p["reproducer"]
    script = tmp_path / p["reproducer"]
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1 and "<-- wrong" in run.stdout, run.stdout + run.stderr
    text = script.read_text()
    assert ", '--bug', 'visited'" in text
    script.write_text(text.replace(", '--bug', 'visited'", ""))
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("name, hint", [
    ("stale_intermediate_grads", "intermediate gradients never reset?"),
    ("visited_never_cleared", "visited flags never cleared?"),
])
def test_reuse_after_backward_names_the_likely_cause(tmp_path, name, hint):
    # y kept its gradient of 1 from its own backward and passes it on again (the leaf
    # gets the first backward twice, PyPI micrograd's 39 = 2 * 6 + 27), or the second
    # backward skips y's graph: the finding and the reproducer say which it looks like
    run = certify(tmp_path, engine(tmp_path, name), "-k", "reuse_after_backward", "-j", "1",
                  "--seed", "1")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    _, props = results(tmp_path / "gradcert-report")
    p = props["semantics.reuse_after_backward"]
    assert hint in p["failure"]["summary"]
    repro = subprocess.run([sys.executable, str(tmp_path / p["reproducer"])], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert repro.returncode == 1 and hint.rstrip("?") in repro.stdout, repro.stdout


def test_the_depth_under_default_settings_is_reported_apart_from_the_large_stack(tmp_path):
    # A sort recursing through C: a plain script's 8 MiB stack overflows at 20,000, the
    # host's large stack does not at 100,000. Both depths are reported.
    run = certify(tmp_path, engine(tmp_path, "topo_recursive_c_stack"), "-k", "deep_chain",
                  "-j", "1", "--seed", "1")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc, props = results(tmp_path / "gradcert-report")
    notes = props["robustness.deep_chain"]["notes"]
    assert notes["max_ok_depth"] == 100_000
    plain = notes["default_settings"]
    assert plain["max_ok_depth"] == 2_000 and plain["failed_depth"] == 20_000
    assert "SIGSEGV" in plain["error"]
    report = (tmp_path / "gradcert-report" / "report.md").read_text()
    assert "default settings: depth 2,000 ok, 20,000 fails (" in report
