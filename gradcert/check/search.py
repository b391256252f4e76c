"""The input search of check_grads: hypothesis draws inputs, shrinks a failure,
and a standalone reproducer replays it.

:func:`around` is the default strategy: inputs of the same shapes, dtypes
and kinds as the given ones, each element either the given value or a value
that breaks real code (magnitudes in the tens and hundreds, tiny, zero,
negative); for tensors of more than :data:`SMALL` elements, the given tensor
scaled and a few elements replaced. It shrinks towards the given inputs, so
a shrunk failure differs from them only where it must.

The search is derandomized (the same inputs on every run, so a verdict never
depends on a seed) and writes nothing to a hypothesis database. Inputs at
which the function leaves its domain in exact arithmetic, or whose exact
result is beyond the dtype's range, are skipped and counted in a note.
Shrinking stops after :data:`SHRINK_BUDGET` checks, keeping the simplest
failure found by then.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gradcert.check.judge import FULL, PROJECTIONS
from gradcert.check.result import CheckError, CheckResult

__all__ = ["SHRINK_BUDGET", "SMALL", "around", "inside_hypothesis", "is_strategy", "reject",
           "search", "search_strategy", "with_reproducer"]

SMALL = 16
"""Tensors up to this many elements get every element drawn; larger ones are edited."""

SHRINK_BUDGET = 150
"""Checks spent shrinking a failure, at most."""

EDGES = (0.0, 1.0, -1.0, 0.5, -2.0, 1e-30, -1e-30, 10.0, -10.0, 20.5, -20.5, 30.0, -30.0,
         50.0, -50.0, 100.0, -100.0, 300.0, -300.0)
"""Values that break real code: exact zeros and ones, tiny, tens and hundreds, both signs
(softplus thresholds at 20, exp overflows float32 above 88 and float64 above 709)."""

_SCALES = (1.0, -1.0, 10.0, 30.0, 100.0, 1e-6)


def is_strategy(x: Any) -> bool:
    mod = sys.modules.get("hypothesis.strategies")
    return mod is not None and isinstance(x, mod.SearchStrategy)


def reject() -> None:
    """Reject the current hypothesis example (an input the check cannot judge)."""
    from hypothesis import reject as hypothesis_reject

    hypothesis_reject()


def inside_hypothesis() -> bool:
    """Whether we run inside a hypothesis test (whose own search replaces ours)."""
    mod = sys.modules.get("hypothesis")
    return mod is not None and bool(mod.currently_in_test_context())


# ---------------------------------------------------------------------------
# Strategies.


def _elements(v0: float, st: Any) -> Any:
    return st.one_of(st.just(v0), st.sampled_from(EDGES),
                     st.floats(-3.0, 3.0, allow_subnormal=False),
                     st.floats(-300.0, 300.0, allow_subnormal=False))


def _flat(values: Any, st: Any, n: int) -> Any:
    """Flat float lists around ``values`` (a list of floats)."""
    if n <= SMALL:
        return st.tuples(*(_elements(v, st) for v in values)).map(list)

    def edit(args: tuple[float, list[tuple[int, float]]]) -> list[float]:
        scale, edits = args
        out = [v * scale for v in values]
        for i, v in edits:
            out[i] = v
        return out

    return st.tuples(st.sampled_from(_SCALES),
                     st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(EDGES)),
                              max_size=4)).map(edit)


def around(*args: Any) -> Any:
    """A strategy for argument lists like ``args``: floating tensors, arrays and floats
    drawn around their values (see the module); everything else kept as it is.

    >>> from hypothesis import find
    >>> x, y = find(around(3.0, 7.0), lambda a: a[1] > 25)   # shrinks towards (3, 7)
    >>> x, 25 < y <= 30
    (3.0, True)
    """
    from hypothesis import strategies as st

    parts = [_arg(a, st) for a in args]
    return st.tuples(*parts).map(list)


def _arg(a: Any, st: Any) -> Any:
    if isinstance(a, float):
        return _elements(a, st)
    mod = type(a).__module__ or ""
    if mod.startswith("torch") and a.is_floating_point():
        import torch

        vals = a.detach().reshape(-1).tolist()
        shape, dtype, rg = tuple(a.shape), a.dtype, a.requires_grad
        return _flat(vals, st, len(vals)).map(
            lambda v: torch.tensor(v, dtype=dtype).reshape(shape).requires_grad_(rg))
    if mod.startswith(("jax", "jaxlib")) and "float" in str(a.dtype):
        import jax.numpy as jnp
        import numpy as np

        vals = np.asarray(a).reshape(-1).tolist()
        shape, dtype = tuple(a.shape), a.dtype
        return _flat(vals, st, len(vals)).map(
            lambda v: jnp.asarray(np.array(v, dtype=np.float64).reshape(shape), dtype=dtype))
    if hasattr(a, "data") and hasattr(a, "backward") and isinstance(a.data, float):
        cls = type(a)
        return _elements(a.data, st).map(cls)
    return st.just(a)


# ---------------------------------------------------------------------------
# Searching.


def _key(args: Sequence[Any]) -> str:
    return repr([_plain(a) for a in args])


def _plain(a: Any) -> Any:
    mod = type(a).__module__ or ""
    if mod.startswith("torch"):
        return ("torch", str(a.dtype), a.detach().tolist())
    if mod.startswith(("jax", "jaxlib")):
        import numpy as np

        return ("jax", str(a.dtype), np.asarray(a).tolist())
    if hasattr(a, "data") and hasattr(a, "backward"):
        return ("value", a.data)
    return a


def _run(strategy: Any, examples: int, check: Callable[[list[Any]], CheckResult],
         ) -> tuple[CheckResult | None, int, dict[str, int]]:
    """Search ``strategy`` for a failing check; the shrunk failure (or None), how many
    inputs were checked, and why others were skipped."""
    from hypothesis import HealthCheck, Phase, find, reject, settings
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    cache: dict[str, CheckResult | None] = {}
    skipped: dict[str, int] = {}
    calls = 0
    budget = examples + SHRINK_BUDGET

    def fails(args: list[Any]) -> bool:
        nonlocal calls
        key = _key(args)
        if key not in cache:
            if calls >= budget:
                cache[key] = None
            else:
                calls += 1
                try:
                    cache[key] = check(args)
                except CheckError as e:
                    why = re.sub(r"[-+]?\d[\d.e+-]*", "#", str(e).split(":")[0])[:80]
                    skipped[why] = skipped.get(why, 0) + 1
                    cache[key] = None
                    reject()
        got = cache[key]
        return got is not None and not got.passed

    config = settings(max_examples=examples, database=None, derandomize=True, deadline=None,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.generate, Phase.shrink])
    try:
        bad = find(strategy, fails, settings=config)
    except (NoSuchExample, Unsatisfiable):
        return None, calls, skipped
    return cache[_key(bad)], calls, skipped


def _skip_note(skipped: dict[str, int]) -> list[str]:
    if not skipped:
        return []
    total = sum(skipped.values())
    why = "; ".join(f"{n}x {w}" for w, n in sorted(skipped.items(), key=lambda x: -x[1])[:3])
    return [f"the search skipped {total} drawn input(s) outside the function's domain or "
            f"range ({why})"]


def search(f: Callable[..., Any], args: Sequence[Any], examples: int, name: str,
           opts: dict[str, Any], first: CheckResult) -> CheckResult:
    """Search around ``args`` (whose check passed as ``first``)."""
    from gradcert.check.api import check_once, framework_of

    framework = framework_of(args)

    def check(xs: list[Any]) -> CheckResult:
        return replace(check_once(f, xs, name=name, framework=framework, kinks=False, **opts),
                       inputs=xs)

    bad, calls, skipped = _run(around(*args), examples, check)
    if bad is not None:
        return replace(bad, examples=calls + 1, notes=bad.notes + tuple(_skip_note(skipped))
                       + ("found by the search around the given inputs and shrunk; the "
                          "given inputs pass",))
    return replace(first, examples=calls + 1, notes=first.notes + tuple(_skip_note(skipped)))


def search_strategy(f: Callable[..., Any], strategy: Any, examples: int, name: str,
                    opts: dict[str, Any]) -> CheckResult:
    """Search the inputs ``strategy`` draws (argument lists)."""
    from gradcert.check.api import check_once, framework_of

    seen: list[CheckResult] = []

    def check(xs: Any) -> CheckResult:
        xs = list(xs) if isinstance(xs, (list, tuple)) else [xs]
        r = replace(check_once(f, xs, name=name, framework=framework_of(xs), kinks=False,
                               **opts), inputs=xs)
        seen.append(r)
        return r

    bad, calls, skipped = _run(strategy, examples, check)
    if bad is not None:
        return replace(bad, examples=calls, notes=bad.notes + tuple(_skip_note(skipped)))
    if not seen:
        raise CheckError(f"the strategy drew no input the function could be checked at "
                         f"({'; '.join(skipped) or 'none drawn'})")
    last = seen[-1]
    return replace(last, examples=calls, notes=last.notes + tuple(_skip_note(skipped)))


# ---------------------------------------------------------------------------
# The reproducer.


def _literal(a: Any) -> tuple[str, set[str]] | None:
    """Python source that rebuilds ``a`` exactly, and the imports it needs."""
    if isinstance(a, (bool, int, float, str)) or a is None:
        return repr(a), set()
    mod = type(a).__module__ or ""
    if mod.startswith("torch"):
        rg = ".requires_grad_()" if a.requires_grad else ""
        return (f"torch.tensor({a.detach().tolist()!r}, dtype={a.dtype})"
                f".reshape({tuple(a.shape)!r}){rg}", {"import torch"})
    if mod.startswith(("jax", "jaxlib")):
        import numpy as np

        return (f"jnp.asarray(np.array({np.asarray(a).tolist()!r}).reshape("
                f"{tuple(a.shape)!r}), dtype=jnp.{a.dtype})",
                {"import jax", "import jax.numpy as jnp", "import numpy as np",
                 'jax.config.update("jax_enable_x64", True)'})
    if hasattr(a, "data") and hasattr(a, "backward"):
        cls = type(a)
        return (f"{cls.__name__}({a.data!r})",
                {f"from {cls.__module__} import {cls.__name__}"})
    if isinstance(a, (list, tuple)):
        parts = [_literal(x) for x in a]
        if any(p is None for p in parts):
            return None
        body = ", ".join(p[0] for p in parts if p is not None)
        imports = set().union(*(p[1] for p in parts if p is not None))
        return (f"[{body}]" if isinstance(a, list) else f"({body},)"), imports
    return None


def _importable(f: Any) -> tuple[str, str, str | None] | None:
    """(module, attribute path, sys.path entry) to import ``f`` by, or None."""
    from gradcert.check.api import locate

    where = locate(f)
    if where is None or where[0] == "__main__":
        return None
    module, path = where
    file = getattr(sys.modules.get(module), "__file__", None)
    root = None
    if file:
        p = Path(file).resolve()
        depth = module.count(".") + (1 if p.name == "__init__.py" else 0)
        root = str(p.parents[depth])
    return module, path, root


def reproducer_source(f: Any, result: CheckResult, opts: dict[str, Any]) -> str | None:
    """The reproducer script for a failed ``result``, or None when ``f`` or its
    inputs cannot be written down (a lambda, a local function, an unknown object)."""
    where = _importable(f)
    args = _literal(list(result.inputs or []))
    if where is None or args is None:
        return None
    module, path, root = where
    top, _, rest = path.partition(".")
    imports = sorted(args[1])
    defaults = {"value": True, "fallback": False, "full": FULL, "projections": PROJECTIONS}
    flags = {k: v for k, v in opts.items() if k in defaults and v != defaults[k]}
    options = "".join(f", {k}={v!r}" for k, v in flags.items())
    lines = [
        '"""Reproducer written by gradcert.check_grads.',
        "",
        f"{result.function}",
        "fails at the inputs below: this script checks it there, prints exact against",
        'actual, and exits 1 while the defect is present, 0 once it is fixed."""',
        "",
        "import sys",
        "",
    ]
    if root:
        lines.append(f"sys.path.insert(0, {root!r})")
    lines += [line for line in imports if line.startswith(("import", "from"))]
    lines += [line for line in imports if not line.startswith(("import", "from"))]
    lines += [
        "from gradcert.check import check_grads",
        f"from {module} import {top}",
        "",
        f"f = {top}{'.' + rest if rest else ''}",
        f"inputs = {args[0]}",
        f"result = check_grads(f, inputs, examples=0, raise_on_failure=False, "
        f"reproducer_dir=None{options})",
        "print(result.message())",
        "sys.exit(0 if result.passed else 1)",
        "",
    ]
    return "\n".join(lines)


def with_reproducer(result: CheckResult, f: Any, directory: Path,
                    opts: dict[str, Any]) -> CheckResult:
    """``result`` with its reproducer written to ``directory`` (or a note why not)."""
    source = reproducer_source(f, result, opts)
    if source is None:
        return replace(result, notes=result.notes + (
            "no reproducer: the function is not importable by name (a lambda or a local "
            "function) or an input cannot be written as Python",))
    directory.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", result.function).strip("_") or "function"
    path = directory / f"check_grads_{stem}.py"
    path.write_text(source)
    return replace(result, reproducer=path)
