"""Merge the results of shards (seeds or property subsets run apart) into one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gradcert.results import jsonable, level_status, merge_records, verdict

__all__ = ["MergeError", "merge"]


class MergeError(ValueError):
    """Shards that cannot be merged (different targets, schemas, versions)."""


def merge(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One results document from shards of the same target.

    A property run in several shards is folded as the tests of one property
    are (:func:`gradcert.results.merge_records`): the worst outcome, the sum
    of graphs checked, the largest error. Samples are concatenated, the
    verdict is recomputed, and ``duration_s`` is the total time of all shards.

    >>> a = {"schema": "gradcert.results", "version": 1, "target": "t", "seed": 1,
    ...      "properties": [{"id": "ops.values", "outcome": "passed", "graphs_checked": 3}]}
    >>> b = dict(a, seed=2, properties=[
    ...      {"id": "ops.values", "outcome": "failed", "graphs_checked": 2}])
    >>> m = merge([a, b])
    >>> m["verdict"], m["properties"][0]["outcome"], m["properties"][0]["graphs_checked"], m["seed"]
    ('failed', 'failed', 5, [1, 2])
    """
    if not docs:
        raise MergeError("nothing to merge: give at least one results file")
    first = docs[0]
    for i, d in enumerate(docs):
        for key in ("schema", "version", "target"):
            if d.get(key) != first.get(key):
                raise MergeError(f"shard {i + 1} has {key} {d.get(key)!r}, "
                                 f"shard 1 has {first.get(key)!r}: only shards of one "
                                 "target and one results version merge")
    props = merge_records([p for d in docs for p in d.get("properties") or []])
    out = dict(first)
    out["properties"] = [p.to_dict() for p in props]
    out["samples"] = [s for d in docs for s in (d.get("samples") or [])]
    if out["samples"]:
        out.pop("ops", None)  # per-op figures are recomputed from the merged samples
    out["seed"] = _flat([d.get("seed") for d in docs])
    out["duration_s"] = sum(float(d.get("duration_s") or 0.0) for d in docs)
    out["graphs_checked"] = sum(p.graphs_checked for p in props)
    out["graphs_per_s"] = out["graphs_checked"] / out["duration_s"] if out["duration_s"] else None
    out["levels"] = _levels(out["properties"])
    out["shards"] = len(docs)
    out["verdict"] = verdict(p.outcome for p in props)
    return jsonable(out)


def _levels(props: list[dict[str, Any]]) -> dict[str, str]:
    by: dict[str, list[str]] = {}
    for p in props:
        by.setdefault(str(p.get("level")), []).append(str(p.get("outcome")))
    return {lv: level_status(o) for lv, o in by.items()}


def _flat(seeds: list[Any]) -> list[Any]:
    out: list[Any] = []
    for s in seeds:
        out.extend(s if isinstance(s, list) else [s])
    return out
