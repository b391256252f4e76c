"""docs/ci.md's GitHub Actions workflow, run here: each job's shell steps in order
(as GitHub runs them: bash -eo pipefail, later steps skipped after a failure
unless ``if: always()``), the artifact actions played by copies, a local file as
GITHUB_STEP_SUMMARY, on a planted engine with the quick profile and a fixed seed."""

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ROOT / "tests" / "planted" / "engines"


def workflow():
    text = (ROOT / "docs" / "ci.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block, "docs/ci.md has no yaml block"
    return yaml.safe_load(block.group(1))


def _expand(value, matrix):
    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: str(matrix[m.group(1)]),
                  str(value))


def run_job(job, workdir, env, artifacts, matrix=None):
    """Run ``job``'s steps in ``workdir``; the exit code of each step that ran, by name."""
    matrix = matrix or {}
    summary = workdir / "step-summary.md"
    ran, failed = {}, False
    for i, step in enumerate(job["steps"]):
        if failed and "always()" not in str(step.get("if", "")):
            continue
        name = step.get("name") or step.get("uses") or str(i)
        uses = step.get("uses", "")
        args = {k: _expand(v, matrix) for k, v in (step.get("with") or {}).items()}
        if uses.startswith("actions/upload-artifact"):
            src, dst = workdir / args["path"], artifacts / args["name"]
            if src.is_dir():
                shutil.copytree(src, dst)
            elif src.is_file():
                dst.mkdir(parents=True)
                shutil.copy(src, dst)
            continue
        if uses.startswith("actions/download-artifact"):
            for art in sorted(artifacts.iterdir()):
                if fnmatch.fnmatch(art.name, args.get("pattern", "*")):
                    shutil.copytree(art, workdir / args["path"] / art.name)
            continue
        if "run" not in step or name == "Install":  # the test runs in this environment
            continue
        step_env = {**env, "GITHUB_STEP_SUMMARY": str(summary),
                    **{k: _expand(v, matrix) for k, v in (step.get("env") or {}).items()}}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               step["run"]], cwd=workdir, env=step_env, capture_output=True,
                              text=True, timeout=600)
        ran[name] = done.returncode
        if done.returncode == 2:  # a usage error is the workflow's fault, not the engine's
            pytest.fail(f"step {name!r} exited 2: {done.stderr[-2000:]}")
        failed = failed or done.returncode != 0
    return ran, summary.read_text() if summary.exists() else ""


def test_the_workflow_certifies_shards_and_merges_them(tmp_path):
    wf = workflow()
    assert wf["env"]["PROFILE"] == "ci"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    env.update(wf["env"])
    env.update(TARGET="eng.sub_grad_sign:Value", PROFILE="quick", GRADCERT_SEED="1",
               PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shards = wf["jobs"]["certify"]["strategy"]["matrix"]["include"]
    outcomes = {}
    for matrix in shards:  # each matrix job in a fresh checkout
        checkout = tmp_path / f"job-{matrix['shard']}"
        (checkout / "eng").mkdir(parents=True)
        (checkout / "eng" / "__init__.py").write_text("")
        for name in ("base", "sub_grad_sign"):
            shutil.copy(PLANTED / f"{name}.py", checkout / "eng")
        ran, summary = run_job(wf["jobs"]["certify"], checkout, env, artifacts, matrix)
        assert ran["Certify"] in (0, 1) and "# gradcert certify" in summary
        assert (ran["Certify"] == 1) == ("**FAILED**" in summary)
        outcomes[matrix["shard"]] = ran["Certify"]
        art = artifacts / f"gradcert-{matrix['shard']}"
        assert (art / "junit.xml").is_file() and (art / "results.json").is_file()
    assert outcomes["a"] == 1  # the sign of d(x - y)/dy is wrong: ops.gradients fails
    assert list((artifacts / "gradcert-a" / "reproducers").glob("*.py"))

    report = tmp_path / "job-report"
    report.mkdir()
    ran, summary = run_job(wf["jobs"]["report"], report, env, artifacts)
    assert ran["Merge the shards"] == 0 and ran["Verdict"] == 1
    merged = json.loads((artifacts / "gradcert-merged" / "merged.json").read_text())
    assert merged["shards"] == 2 and merged["verdict"] == "failed"
    levels = {p["level"] for p in merged["properties"]}
    assert levels == {"ops", "graphs", "semantics", "robustness", "optimizer", "models"}
    assert "**FAILED**" in summary and "ops.gradients" in summary
