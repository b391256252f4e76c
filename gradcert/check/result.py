"""What a gradient check reports: its result, each number outside its bound, its errors.

A :class:`CheckResult` keeps to the shared results vocabulary: its
``outcome`` is ``passed`` or ``failed``, a failure carries a ``severity``
(``class`` one of ``wrong derivative``, ``wrong value``, ``inaccurate``;
``ratio`` the error over its bound) and a ``worst`` mismatch; ``message()``
says which input, which output, the exact value, the function's and the
bound, and where the reproducer is.

>>> m = Mismatch("gradient", 0, (1,), "output 0 [2]", 1.0, 0.0, 2e-16, 1.0, 1.0)
>>> print(m)
d output 0 [2] / d input 0 [1]: exact 1.0, got 0.0, off by 1 > bound 2e-16
>>> m.severity
'wrong derivative'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CheckError",
    "CheckResult",
    "GradientMismatch",
    "Mismatch",
    "NotYetSupported",
    "OutsideDomain",
    "Untraceable",
    "check_id",
]


class CheckError(ValueError):
    """The function or its inputs cannot be checked as given (says what and where)."""


class OutsideDomain(CheckError):
    """The function cannot be judged at these inputs: it leaves its domain or its dtype's
    range there, sits on a kink, raises, or no output depends on the inputs there.
    The search skips such inputs; inside a hypothesis test they are rejected."""


class Untraceable(CheckError):
    """An op gradcert cannot trace exactly: ``op`` names it (the framework's name,
    or an op-table row ``row`` that is missing)."""

    def __init__(self, op: str, reason: str, row: str | None = None) -> None:
        self.op = op
        self.reason = reason
        self.row = row
        super().__init__(f"cannot trace {op}: {reason}")

    def named(self, op: str) -> Untraceable:
        """The same error, naming the framework's op that needed the row."""
        if op == self.op:
            return self
        return Untraceable(op, self.reason, self.row)


class NotYetSupported(NotImplementedError):
    """A documented feature that is not built yet (second-order checks)."""


@dataclass(frozen=True)
class Mismatch:
    """One value or derivative of the function outside its bound.

    ``what`` is ``value`` or ``gradient``; ``input`` and ``index`` say which
    input element (None for a value); ``output`` which output element or
    cotangent; ``expected`` is exact (rounded to float64), ``actual`` the
    function's, ``bound`` the tolerance, ``error`` |actual - exact|.
    """

    what: str
    input: int | None
    index: tuple[int, ...] | None
    output: str
    expected: float
    actual: float
    bound: float
    error: float
    scale: float  # the size of the exact number, to tell wrong from inaccurate

    @property
    def ratio(self) -> float:
        """The error over its bound (1 is the edge of passing)."""
        return self.error / self.bound if self.bound > 0 else math.inf

    @property
    def severity(self) -> str:
        if self.what == "value":
            return "wrong value" if self._wrong() else "inaccurate"
        return "wrong derivative" if self._wrong() else "inaccurate"

    def _wrong(self) -> bool:
        """Off by more than a millionth of the exact number (or not finite)."""
        return not math.isfinite(self.error) or self.error > 1e-6 * max(self.scale, 1e-300)

    def where(self) -> str:
        if self.what == "value":
            return f"{self.output}"
        at = "" if not self.index else f" {list(self.index)}"
        return f"d {self.output} / d input {self.input}{at}"

    def __str__(self) -> str:
        return (f"{self.where()}: exact {self.expected!r}, got {self.actual!r}, "
                f"off by {self.error:.3g} > bound {self.bound:.3g}")


@dataclass(frozen=True)
class CheckResult:
    """The verdict of :func:`gradcert.check_grads` on one function.

    True when it passed. ``mismatches`` are every number outside its bound,
    worst first; ``notes`` what the reader should know (branches taken
    within rounding, an approximate check, inputs the search skipped);
    ``inputs`` the inputs judged (the shrunk ones after a search);
    ``reproducer`` the script that replays a failure.
    """

    outcome: str
    function: str
    framework: str
    dtype: str
    mismatches: tuple[Mismatch, ...] = ()
    notes: tuple[str, ...] = ()
    nodes: int = 0
    checked: int = 0  # numbers compared
    cotangents: str = ""
    tolerance: str = ""
    approximate: bool = False
    examples: int = 1
    inputs: Any = None
    reproducer: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def __bool__(self) -> bool:
        return self.passed

    @property
    def worst(self) -> Mismatch | None:
        return self.mismatches[0] if self.mismatches else None

    @property
    def severity(self) -> dict[str, Any] | None:
        """``{"class": ..., "ratio": ...}`` of the worst mismatch, None when passed."""
        w = self.worst
        return None if w is None else {"class": w.severity, "ratio": w.ratio}

    def message(self, limit: int = 8) -> str:
        """What a person reads: the verdict, the worst numbers, notes, the reproducer."""
        kind = "approximate check (finite differences)" if self.approximate else "exact check"
        tried = f", {self.examples} inputs tried" if self.examples > 1 else ""
        head = (f"check_grads({self.function}) {self.outcome.upper()}: {self.framework}, "
                f"{self.dtype}, {kind}; {self.checked} numbers compared, {self.nodes} graph "
                f"nodes, cotangents: {self.cotangents}{tried}")
        lines = [head]
        if self.mismatches:
            n = len(self.mismatches)
            sev = self.severity or {}
            lines.append(f"{n} number(s) outside the bound ({sev.get('class')}, "
                         f"worst {sev.get('ratio', 0):.3g}x the bound):")
            width = max(len(m.where()) for m in self.mismatches[:limit])
            lines.append(f"  {'':<{width}} {'exact':>24} {'actual':>24} {'bound':>9}")
            for m in self.mismatches[:limit]:
                lines.append(f"  {m.where():<{width}} {m.expected!r:>24} {m.actual!r:>24} "
                             f"{m.bound:>9.2g}")
            if n > limit:
                lines.append(f"  ... and {n - limit} more")
        if self.inputs is not None and not self.passed:
            lines.append(f"at the inputs: {self.inputs}")
        if self.tolerance:
            lines.append(f"bound: {self.tolerance}")
        lines += [f"note: {t}" for t in self.notes]
        if self.reproducer is not None:
            lines.append(f"reproducer: python {self.reproducer}  (exits 1 while this fails)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record, in the shared results vocabulary (non-finite numbers
        as the strings ``"inf"``, ``"-inf"``, ``"nan"``, as in ``results.json``).

        >>> import json
        >>> r = CheckResult("failed", "f", "torch", "float64", (Mismatch(
        ...     "gradient", 0, (1,), "output", 1.0, 0.0, 0.0, 1.0, 1.0),))
        >>> d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
        >>> d["outcome"], d["severity"]
        ('failed', {'class': 'wrong derivative', 'ratio': 'inf'})
        """
        w = self.worst
        out: dict[str, Any] = {
            "function": self.function, "framework": self.framework, "dtype": self.dtype,
            "outcome": self.outcome, "nodes": self.nodes, "checked": self.checked,
            "examples": self.examples, "approximate": self.approximate,
            "notes": list(self.notes),
        }
        if w is not None:
            out["severity"] = self.severity
            out["worst"] = {"where": w.where(), "expected": w.expected, "actual": w.actual,
                            "bound": w.bound, "error": w.error}
            out["failure"] = {"message": self.message()}
        if self.reproducer is not None:
            out["reproducer"] = str(self.reproducer)
        return _jsonable(out)

    def to_record(self, item: str | None = None, duration_s: float = 0.0) -> dict[str, Any]:
        """This check as a record of gradcert's one results model
        (:mod:`gradcert.results`): a property ``check.<function>`` of level
        ``check``, one test ``item`` of it (a pytest node id), so checks are
        reported as certifications are (Markdown, HTML, JUnit).

        >>> r = CheckResult("failed", "Softplus.apply", "torch", "float64", (Mismatch(
        ...     "gradient", 0, (1,), "output", 1.0, 0.0, 1e-16, 1.0, 1.0),), examples=3)
        >>> rec = r.to_record("tests/test_f.py::test_softplus")
        >>> rec["id"], rec["outcome"], rec["graphs_checked"], rec["failure"]["severity"]
        ('check.softplus_apply', 'failed', 3, {'class': 'wrong derivative', 'ratio': 1e+16})
        """
        w = self.worst
        worst: dict[str, Any] = {"of_bound": self.extra.get("of_bound", math.nan)}
        failure = None
        if w is not None:
            worst = {"of_bound": w.ratio, "rel": w.error / abs(w.expected) if w.expected
                     else math.inf, "kind": "grad" if w.what == "gradient" else "value",
                     "where": w.where()}
            lines = [str(m) for m in self.mismatches[:8]]
            if len(self.mismatches) > 8:
                lines.append(f"... and {len(self.mismatches) - 8} more numbers outside "
                             f"their bounds")
            if self.inputs is not None:
                lines.append(f"at the inputs: {self.inputs}")
            lines += [f"note: {t}" for t in self.notes]
            failure = {"message": "\n".join(lines), "summary": str(w),
                       "expected": w.expected, "actual": w.actual, "bound": w.bound,
                       "severity": self.severity}  # the worst mismatch is the one found
        notes: dict[str, Any] = {"framework": self.framework, "dtype": self.dtype,
                                 "graph nodes": self.nodes, "numbers compared": self.checked}
        if self.notes:
            notes["notes"] = list(self.notes)
        if self.approximate:
            notes["approximate"] = "finite differences, not the exact oracle"
        return _jsonable({
            "id": check_id(self.function), "level": "check",
            "meaning": f"{self.function}'s own backward (and value) agree with the exact ones "
                       f"within the tolerance model",
            "item": item, "outcome": self.outcome, "graphs_checked": self.examples,
            "duration_s": duration_s, "worst": worst, "failure": failure,
            "reproducer": None if self.reproducer is None else str(self.reproducer),
            "notes": notes})


def check_id(name: str) -> str:
    """The results model's property id for the checks of the function ``name``.

    >>> check_id("Softplus.apply"), check_id("<lambda>")
    ('check.softplus_apply', 'check.lambda')
    """
    slug = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", name.lower())).strip("_")
    return f"check.{slug or 'function'}"


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if x != x else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


class GradientMismatch(AssertionError):
    """Raised by :func:`gradcert.check_grads` when a check fails; ``.result`` has it all."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        super().__init__(result.message())
