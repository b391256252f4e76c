"""The pytest plugin: registered, cheap to import, inert unless asked, echoing its
settings, and running the conformance suite inside a team's own pytest session."""

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

PLANTED = Path(__file__).resolve().parent / "planted" / "engines"


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRADCERT_", "PYTEST_"))}
    return {**env, **extra}


def test_the_plugin_is_registered_under_its_module_name():
    eps = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert eps.get("gradcert.pytest_plugin") == "gradcert.pytest_plugin"


def test_importing_the_plugin_imports_almost_nothing():
    code = textwrap.dedent("""
        import sys, pytest
        before = set(sys.modules)
        import gradcert.pytest_plugin
        print(" ".join(sorted(set(sys.modules) - before)))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=_env())
    new = set(run.stdout.split())
    assert {"gradcert.pytest_plugin", "gradcert.settings"} <= new, run.stderr
    heavy = {m for m in new if m.split(".")[0] in (
        "hypothesis", "mpmath", "gmpy2", "numpy", "torch", "jax", "rich", "matplotlib")}
    ours = {m for m in new if m.startswith("gradcert")}
    assert not heavy and ours <= {"gradcert", "gradcert.pytest_plugin", "gradcert.settings"}


def _session(tmp_path, *args, **env):
    (tmp_path / "none.ini").write_text("[pytest]\n")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-c", str(tmp_path / "none.ini"), "--rootdir", str(tmp_path), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=_env(**env))


@pytest.mark.e2e
def test_the_header_echoes_every_setting_and_variable_and_is_silent_without_them(tmp_path):
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        def test_engine(gradcert_engine, gradcert_config):
            assert gradcert_engine.name == "gradcert"
            assert gradcert_engine.client.running  # the engine runs in a host process
            assert gradcert_config.profile.example_cpu == 2.5
    """))
    on = _session(tmp_path, "-p", "no:xdist", "--gradcert-profile=ci", str(tmp_path),
                  GRADCERT_EXAMPLE_TIMEOUT="2.5", GRADCERT_SEDE="1")
    assert on.returncode == 0, on.stdout[-3000:]
    assert ("gradcert: target=gradcert profile=ci seed=derandomized out=- jobs=- "
            "example_timeout=2.5s (CPU)") in on.stdout
    assert "GRADCERT_EXAMPLE_TIMEOUT=2.5" in on.stdout
    assert "GRADCERT_SEDE=1 (no such setting)" in on.stdout
    (tmp_path / "test_x.py").write_text("def test_nothing():\n    pass\n")
    off = _session(tmp_path, "-p", "no:xdist", str(tmp_path))
    assert off.returncode == 0
    assert not [line for line in off.stdout.splitlines() if line.startswith("gradcert")]


@pytest.mark.e2e
def test_a_bad_option_is_a_usage_error_naming_it(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_nothing():\n    pass\n")
    run = _session(tmp_path, "-p", "no:xdist", "--gradcert-seed=x", str(tmp_path))
    assert run.returncode == 4
    assert "gradcert: --gradcert-seed: the seed must be an integer" in run.stderr


@pytest.mark.e2e
def test_the_suite_runs_in_a_teams_own_session_with_the_same_options(tmp_path):
    pkg = tmp_path / "eng"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text((PLANTED / "base.py").read_text())
    run = _session(tmp_path, "--pyargs", "gradcert.properties.suite", "-p", "no:xdist",
                   "-k", "kinks or dtype", "--gradcert-target=eng.base:Value",
                   "--gradcert-seed=1", "--gradcert-out=rep")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 passed" in run.stdout and "gradcert: target=eng.base:Value" in run.stdout
    records = [json.loads(line) for f in (tmp_path / "rep" / "records").glob("*.jsonl")
               for line in f.read_text().splitlines()]
    assert {r["id"] for r in records} == {"ops.kinks", "robustness.dtype"}
    assert all(r["outcome"] == "passed" for r in records)


@pytest.mark.e2e
def test_the_suite_is_collected_only_when_named(tmp_path):
    import gradcert

    package = Path(gradcert.__file__).resolve().parent / "properties"
    run = _session(tmp_path, "--collect-only", "-q", "-p", "no:doctest", str(package))
    assert "suite/ops.py" not in run.stdout and run.returncode == 5, run.stdout[-2000:]
    named = _session(tmp_path, "--collect-only", "-q", str(package / "suite"))
    assert "ops.py::test_values" in named.stdout.replace("suite/", "")
