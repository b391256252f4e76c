"""Merge the results of shards (seeds or property subsets run apart) into one."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MergeError", "merge"]

# The outcome a merged property takes: the worst seen in any shard.
_RANK = {"unsupported": 0, "passed": 1, "timeout": 2, "error": 3, "failed": 4}
_BAD = {"failed", "error", "timeout"}


class MergeError(ValueError):
    """Shards that cannot be merged (different targets, schemas, versions)."""


def _ulps(p: Mapping[str, Any]) -> float:
    try:
        v = float((p.get("worst") or {}).get("ulps"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(v) else v


def _merge_property(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    if _RANK.get(str(b.get("outcome")), 0) > _RANK.get(str(a.get("outcome")), 0):
        for key in ("outcome", "failure", "reproducer"):
            if key in b:
                out[key] = b[key]
            else:
                out.pop(key, None)
    out["graphs_checked"] = int(a.get("graphs_checked") or 0) + int(b.get("graphs_checked") or 0)
    if _ulps(b) > _ulps(a):
        out["worst"] = b.get("worst")
    return out


def merge(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One results document from shards of the same target.

    A property run in several shards takes its worst outcome, the sum of its
    graphs checked and its largest error; samples are concatenated; the
    verdict is recomputed; ``duration_s`` is the total time of all shards.

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
    props: dict[str, dict[str, Any]] = {}
    for d in docs:
        for p in d.get("properties") or []:
            pid = str(p.get("id"))
            props[pid] = _merge_property(props[pid], p) if pid in props else dict(p)
    out = dict(first)
    out["properties"] = list(props.values())
    out["samples"] = [s for d in docs for s in (d.get("samples") or [])]
    if out["samples"]:
        out.pop("ops", None)  # per-op figures are recomputed from the merged samples
    out["seed"] = _flat([d.get("seed") for d in docs])
    out["duration_s"] = sum(float(d.get("duration_s") or 0.0) for d in docs)
    out["shards"] = len(docs)
    out["verdict"] = "failed" if any(p.get("outcome") in _BAD for p in props.values()) \
        else "certified"
    return out


def _flat(seeds: list[Any]) -> list[Any]:
    out: list[Any] = []
    for s in seeds:
        out.extend(s if isinstance(s, list) else [s])
    return out
