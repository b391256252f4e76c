"""`gradcert report`, `compare` and `merge` from the command line."""

import json
from pathlib import Path

import pytest

from gradcert.cli import main

SAMPLE = str(Path(__file__).parent / "data" / "results_sample.json")


def test_report_markdown_to_stdout(capsys):
    assert main(["report", SAMPLE]) == 0
    assert capsys.readouterr().out.startswith("# gradcert certify `mypkg.engine:Value`: **FAILED**")


def test_report_html_to_file(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", SAMPLE, "--format", "html", "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "wrote" in capsys.readouterr().err


def test_report_json_round_trips(capsys):
    from gradcert.results import Results

    assert main(["report", SAMPLE, "--format", "json"]) == 0
    out = Results.from_json(capsys.readouterr().out)
    assert out.to_dict() == Results.load(SAMPLE).to_dict()
    assert out.ops["mul"]["grad"].count > 0, "per-op figures computed from the samples"


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("{not json", "is not JSON"),
    ('{"verdict": "certified"}', "not a gradcert results document"),
])
def test_report_bad_input_exits_2_with_a_message(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err


def test_compare_markdown_html_and_terminal(tmp_path, capsys):
    other = json.loads(Path(SAMPLE).read_text())
    other["target"] = "torch"
    engine = tmp_path / "torch"
    engine.mkdir()
    b = engine / "results.json"
    b.write_text(json.dumps(other))
    (engine / "report.html").write_text("<!DOCTYPE html>")
    assert main(["compare", SAMPLE, str(b), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "| verdict | ❌ failed | ❌ failed |" in md
    out = tmp_path / "cmp" / "comparison.html"
    out.parent.mkdir()
    assert main(["compare", SAMPLE, str(b), "--format", "html", "-o", str(out)]) == 0
    page = out.read_text()
    assert 'href="../torch/report.html"' in page, "a link to each engine's own report"
    assert main(["compare", SAMPLE, str(b), "--format", "term", "-o", str(tmp_path / "t")]) == 0
    text = (tmp_path / "t").read_text()
    assert "torch" in text and max(map(len, text.splitlines())) <= 80


def test_merge_writes_one_document(tmp_path):
    out = tmp_path / "m.json"
    assert main(["merge", SAMPLE, SAMPLE, "-o", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["shards"] == 2 and merged["verdict"] == "failed" and merged["seed"] == [0, 0]


def test_merge_of_different_targets_exits_2(tmp_path, capsys):
    other = json.loads(Path(SAMPLE).read_text())
    other["target"] = "torch"
    b = tmp_path / "b.json"
    b.write_text(json.dumps(other))
    assert main(["merge", SAMPLE, str(b), "-o", str(tmp_path / "m.json")]) == 2
    assert "target" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: gradcert") and "report" in out
