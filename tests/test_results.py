"""The results document: verdicts, merging of per-test records, JSON round trips."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcert.results import (
    BAD,
    OUTCOMES,
    PropertyResult,
    Results,
    ResultsError,
    jsonable,
    merge_records,
    ops_summary,
    read_records,
    verdict,
)

outcomes = st.sampled_from(OUTCOMES)


@given(st.lists(outcomes))
def test_verdict_is_certified_exactly_when_nothing_bad_and_something_passed(seen):
    expected = "certified" if "passed" in seen and not set(seen) & BAD else "failed"
    assert verdict(seen) == expected


records = st.lists(st.fixed_dictionaries({
    "id": st.sampled_from(["ops.values", "graphs.oracle", "semantics.fan_out"]),
    "outcome": outcomes,
    "graphs_checked": st.integers(0, 100),
    "worst": st.one_of(st.none(), st.fixed_dictionaries(
        {"ulps": st.floats(0, 1e20, allow_nan=False), "op": st.sampled_from(["log", "exp"])})),
}), max_size=12)


@given(records)
def test_merge_keeps_the_worst_outcome_and_adds_up_graphs(recs):
    merged = {p.id: p for p in merge_records(recs)}
    assert set(merged) == {r["id"] for r in recs}
    rank = ["unsupported", "passed", "not run", "timeout", "crashed", "error", "failed"]
    for pid, p in merged.items():
        mine = [r for r in recs if r["id"] == pid]
        assert p.graphs_checked == sum(r["graphs_checked"] for r in mine)
        assert p.outcome == max((r["outcome"] for r in mine), key=rank.index)
        ulps = [r["worst"]["ulps"] for r in mine if r["worst"]]
        assert (p.worst or {}).get("ulps") == (max(ulps) if ulps else None)


def test_results_round_trip_through_strict_json():
    r = Results("micrograd", [
        PropertyResult("ops.values", "ops", "m", "passed", 3, worst={"ulps": math.inf}),
        PropertyResult("semantics.second_backward", "semantics", outcome="failed",
                       failure={"message": "72 is neither 54 nor 27"}, reproducer="r.py"),
    ], seed=7, duration_s=2.0)
    text = r.to_json()
    doc = json.loads(text)  # strict JSON: no NaN/Infinity literals
    assert doc["schema"] == "gradcert.results" and doc["version"] == 1
    assert doc["verdict"] == "failed"
    assert doc["levels"] == {"ops": "passed", "semantics": "failed"}
    assert doc["properties"][0]["worst"]["ulps"] == "inf"
    back = Results.from_json(text)
    assert back.property("semantics.second_backward").reproducer == "r.py"
    assert back.graphs_checked == 3 and back.graphs_per_s == 1.5


def test_reports_read_the_document():
    from gradcert.reports import summarize

    r = Results("gradcert", [PropertyResult("ops.values", "ops", graphs_checked=4)],
                ops=ops_summary([{"op": "log", "kind": "value", "ulps": 1.0, "rel": 1e-16}]))
    s = summarize(r.to_dict())
    assert s.verdict == "certified" and s.graphs_checked == 4
    assert s.levels["ops"] == "passed"


@pytest.mark.parametrize("doc, problem", [
    ({"schema": "other"}, "not a gradcert.results document"),
    ({"schema": "gradcert.results", "version": 99}, "version 99"),
])
def test_unreadable_documents_say_why(doc, problem):
    with pytest.raises(ResultsError, match=problem):
        Results.from_dict(doc)


def test_an_unknown_outcome_is_refused():
    with pytest.raises(ResultsError, match="outcome 'meh'"):
        PropertyResult("ops.values", "ops", outcome="meh")


def test_a_torn_last_record_is_skipped_but_a_torn_middle_one_is_an_error(tmp_path):
    f = tmp_path / "gw0.jsonl"
    f.write_text('{"id": "ops.values", "outcome": "passed"}\n{"id": "ops.gr')
    assert [r["id"] for r in read_records([f])] == ["ops.values"]
    f.write_text('{"id": "ops.gr\n{"id": "ops.values"}\n')
    with pytest.raises(ResultsError, match="gw0.jsonl:1"):
        read_records([f])


def test_jsonable_replaces_only_non_finite_numbers():
    assert jsonable([1.5, -math.inf, (2, "x")]) == [1.5, "-inf", [2, "x"]]


def test_ops_summary_median_and_worst():
    rows = [{"op": "exp", "kind": "grad", "ulps": u, "rel": u * 1e-16, "inputs": [u]}
            for u in (0.0, 1.0, 5.0)]
    s = ops_summary(rows)["exp"]["grad"]
    assert (s["count"], s["median_ulps"], s["max_ulps"], s["worst_inputs"]) == (3, 1.0, 5.0, [5.0])
