"""The results model: verdicts, merging of records and shards, per-op statistics,
JSON round trips."""

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcert.results import (
    BAD,
    OUTCOMES,
    OpStats,
    PropertyResult,
    Results,
    ResultsError,
    RootCause,
    Sample,
    Severity,
    jsonable,
    level_status,
    merge_records,
    ops_summary,
    read_records,
    verdict,
)

DATA = Path(__file__).parent / "data"
outcomes = st.sampled_from(OUTCOMES)


@given(st.lists(outcomes))
def test_verdict_is_certified_exactly_when_nothing_bad_or_missing_and_something_passed(seen):
    complete = "not run" not in seen
    expected = "certified" if "passed" in seen and not set(seen) & BAD and complete else "failed"
    assert verdict(seen) == expected
    status = level_status(seen)
    assert (status == "failed") == bool(set(seen) & BAD)
    assert (status in ("incomplete", "not run")) == (not seen or ("not run" in seen
                                                                  and not set(seen) & BAD))


records = st.lists(st.fixed_dictionaries({
    "id": st.sampled_from(["ops.values", "graphs.oracle", "semantics.fan_out"]),
    "outcome": outcomes,
    "graphs_checked": st.integers(0, 100),
    "worst": st.one_of(st.none(), st.fixed_dictionaries(
        {"ulps": st.floats(0, 1e20, allow_nan=False), "of_bound": st.floats(0, 1e6),
         "op": st.sampled_from(["log", "exp"])})),
}), max_size=12)


@given(records)
def test_merge_keeps_the_worst_outcome_and_adds_up_graphs(recs):
    merged = {p.id: p for p in merge_records(recs)}
    assert set(merged) == {r["id"] for r in recs}
    rank = ["unsupported", "passed", "not run", "timeout", "error", "crashed", "failed"]
    for pid, p in merged.items():
        mine = [r for r in recs if r["id"] == pid]
        assert p.graphs_checked == sum(r["graphs_checked"] for r in mine)
        assert p.outcome == max((r["outcome"] for r in mine), key=rank.index)
        worst = [r["worst"]["of_bound"] for r in mine if r["worst"]]
        assert (p.worst or {}).get("of_bound") == (max(worst) if worst else None), \
            "the worst error is the largest fraction of its bound, as the verdict judges"


samples = st.lists(st.fixed_dictionaries({
    "op": st.sampled_from(["log", "exp"]), "kind": st.sampled_from(["value", "grad"]),
    "ulps": st.floats(0, 1e19), "rel": st.floats(0, 1e3),
    "of_bound": st.floats(0, 1e3) | st.just(math.nan),
    "inputs": st.lists(st.floats(-1e300, 1e300), min_size=1, max_size=2)}), max_size=30)


@given(samples)
def test_an_ops_worst_input_is_the_input_of_its_reported_maximum(rows):
    table = ops_summary(rows)
    for op, kinds in table.items():
        for kind, s in kinds.items():
            mine = [x for x in rows if x["op"] == op and x["kind"] == kind]
            assert s.count == len(mine)
            bounds = [x["of_bound"] for x in mine if not math.isnan(x["of_bound"])]
            if bounds:
                assert s.worst.of_bound == s.max_of_bound == max(bounds)
                assert any(list(s.worst.inputs) == x["inputs"] and x["of_bound"] == max(bounds)
                           for x in mine), "the input shown is the maximum's own"


def test_ops_summary_median_and_worst():
    rows = [{"op": "exp", "kind": "grad", "ulps": u, "rel": u * 1e-16, "inputs": [u],
             "of_bound": f} for u, f in ((0.0, 0.0), (1.0, 0.9), (5.0, 0.2))]
    rows.append({"op": None, "kind": "grad", "ulps": 9.0, "of_bound": 5.0, "nodes": 9})
    s = ops_summary(rows)["exp"]["grad"]
    assert (s.count, s.median_ulps, s.max_ulps, s.max_of_bound) == (3, 1.0, 5.0, 0.9)
    assert s.median_of_bound == 0.2 and s.worst.inputs == (1.0,), "worst by bound, not ulps"
    assert set(ops_summary(rows)) == {"exp"}, "a whole graph is not an op"


def test_old_documents_with_worst_inputs_still_read():
    s = OpStats.from_dict("exp", "grad", {"count": 2, "max_ulps": 3.0, "max_of_bound": 0.4,
                                          "worst_inputs": [2.5]})
    assert s.worst.inputs == (2.5,) and s.worst.of_bound == 0.4


def test_a_pass_far_below_the_ulp_scale_is_an_exact_value_near_zero():
    tanh20 = Sample("grad", op="tanh", ulps=4.36e18, rel=1.0, of_bound=0.0153)
    assert tanh20.exact_near_zero and tanh20.bits > 60
    assert not Sample("grad", ulps=4.36e18, rel=1.0, of_bound=3.0).exact_near_zero
    assert not Sample("grad", ulps=105.0, rel=1.3e-14, of_bound=0.12).exact_near_zero
    assert not Sample("grad", ulps=math.inf).exact_near_zero, "no bound, no verdict on it"
    assert Sample("grad", inputs=(0.0, -354.0, "inf")).magnitude == 354.0


def test_results_round_trip_through_strict_json():
    r = Results("micrograd", [
        PropertyResult("ops.values", "ops", "m", "passed", 3, worst={"ulps": math.inf}),
        PropertyResult("semantics.second_backward", "semantics", outcome="failed",
                       failure={"message": "72 is neither 54 nor 27"}, reproducer="r.py"),
    ], seed=7, duration_s=2.0, samples=[{"op": "log", "kind": "value", "ulps": 1.0,
                                         "of_bound": 0.5, "inputs": [2.0]}])
    text = r.to_json()
    doc = json.loads(text)  # strict JSON: no NaN/Infinity literals
    assert doc["schema"] == "gradcert.results" and doc["version"] == 1
    assert doc["verdict"] == "failed"
    assert doc["levels"] == {"ops": "passed", "graphs": "not run", "semantics": "failed",
                             "robustness": "not run", "optimizer": "not run",
                             "models": "not run"}
    assert doc["properties"][0]["worst"]["ulps"] == "inf"
    assert doc["ops"]["log"]["value"]["worst"]["inputs"] == [2.0]
    back = Results.from_json(text)
    assert back.property("semantics.second_backward").reproducer == "r.py"
    assert back.graphs_checked == 3 and back.graphs_per_s == 1.5
    assert back.to_dict() == doc


def test_merge_combines_shards():
    sample = Results.load(DATA / "results_sample.json")
    a, b = copy.deepcopy(sample), copy.deepcopy(sample)
    b.seed = 99
    for p in a.properties:
        if p.outcome == "failed":
            p.outcome, p.failure, p.reproducer = "passed", None, None
    m = Results.merge([a, b])
    assert m.verdict == "failed" and m.seed == [a.seed, 99] and m.shards == 2
    chain = m.property("robustness.chain_10k")
    assert chain.outcome == "failed" and chain.reproducer is not None
    assert len(m.samples) == 2 * len(sample.samples)
    assert m.ops["mul"]["grad"].count == 2 * sample.ops["mul"]["grad"].count
    assert m.duration_s == 2 * sample.duration_s
    assert Results.merge([a]).verdict == "certified"
    again = Results.merge([m, a])
    assert again.shards == 3 and again.seed == [0, 99, 0]


def test_merge_refuses_different_targets_and_nothing():
    sample = Results.load(DATA / "results_sample.json")
    other = copy.deepcopy(sample)
    other.target = "else"
    with pytest.raises(ResultsError, match="target"):
        Results.merge([sample, other])
    with pytest.raises(ResultsError, match="nothing"):
        Results.merge([])


def test_failures_come_root_causes_first_and_carry_the_shared_contract():
    r = Results("t", [
        PropertyResult("semantics.fan_out", "semantics", outcome="failed", failure={
            "root_cause": {"op": "tanh", "property": "ops.values", "text": "tanh is wrong"},
            "severity": {"class": "wrong value", "ratio": 14.0}}),
        PropertyResult("ops.values", "ops", outcome="failed", failure={
            "severity": {"class": "wrong value", "ratio": 2.4e5}}),
        PropertyResult("ops.gradients", "ops", outcome="crashed")])
    assert [p.id for p in r.failures()] == ["ops.values", "ops.gradients", "semantics.fan_out"]
    fan = r.property("semantics.fan_out")
    assert fan.root_cause == RootCause("tanh", "ops.values", "tanh is wrong")
    assert fan.severity == Severity("wrong value", 14.0) and not fan.is_root_cause
    assert r.failing_ops() == {"tanh"}


@pytest.mark.parametrize("doc, problem", [
    ({"schema": "other"}, "not a gradcert results document"),
    ({"schema": "gradcert.results", "version": 99}, "version 99"),
])
def test_unreadable_documents_say_why(doc, problem):
    with pytest.raises(ResultsError, match=problem):
        Results.from_dict(doc)


def test_load_names_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "r.json"
    for content, says in ((None, "cannot read"), ("{oops", "is not JSON"),
                          ('{"schema": "x"}', "not a gradcert results document")):
        if content is not None:
            bad.write_text(content)
        with pytest.raises(ResultsError, match=says) as e:
            Results.load(bad)
        assert str(bad) in str(e.value)


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
