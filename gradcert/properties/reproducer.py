"""Standalone reproducer scripts for failed properties.

A reproducer imports only the engine under test (by the import line its
adapter gives, i.e. the module path the user named), rebuilds the shrunk
graph with the engine's own operators, compares with the exact numbers
written into it, prints expected next to actual, and exits 1 while the
defect is present and 0 once it is fixed, so it doubles as a regression
test.

>>> from gradcert.graph import trace
>>> print(build_source(trace(lambda x, y: (x * y).log(), [2.0, 3.0])), end="")
def build(Value, leaves=None):
    if leaves is None:
        leaves = [Value(2.0), Value(3.0)]
    x0, x1 = leaves
    v2 = x0 * x1
    v3 = v2.log()
    return leaves, v3
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gradcert.graph import Graph
from gradcert.ops import OPS, interpreter_source

__all__ = ["build_source", "script", "write"]

MAX_INLINE = 2000  # graphs larger than this are written as data plus a small interpreter

_HELPERS = '''
def close(actual, expected, bound):
    if actual == expected:
        return True
    return math.isfinite(actual) and abs(actual - expected) <= bound


def table(rows):
    """Print expected vs actual; return how many rows are outside their bound."""
    print(f"{'':>12} {'expected':>25} {'actual':>25} {'bound':>10}")
    bad = 0
    for name, expected, actual, bound in rows:
        ok = close(actual, expected, bound)
        bad += not ok
        mark = "" if ok else "   <-- wrong"
        print(f"{name:>12} {expected!r:>25} {actual!r:>25} {bound:>10.3g}{mark}")
    return bad
'''

_INTERPRETER = interpreter_source() + '''

def build(Value, leaves=None):
    if leaves is None:
        leaves = [Value(n[1]) for n in NODES if n[0] == "leaf"]
    it = iter(leaves)
    vals = []
    for op, *rest in NODES:
        if op == "leaf":
            vals.append(next(it))
        else:
            args, const = rest
            vals.append(OPS[op](*(vals[a] for a in args), const))
    return leaves, vals[-1]
'''


def build_source(graph: Graph) -> str:
    """``def build(Value, leaves=None)``: rebuilds ``graph`` with ``Value`` (or on the given
    leaves) and returns ``(leaves, output)``; floats are written exactly (``repr``)."""
    if len(graph) > MAX_INLINE:
        nodes = [["leaf", n.value] if n.op == "leaf" else [n.op, list(n.args), n.const]
                 for n in graph.nodes]
        return f"NODES = {json.dumps(nodes)}\n" + _INTERPRETER
    names = [f"x{i}" if n.op == "leaf" else f"v{i}" for i, n in enumerate(graph.nodes)]
    leaves = [names[i] for i in graph.leaves]
    lines = ["def build(Value, leaves=None):", "    if leaves is None:",
             "        leaves = [" + ", ".join(f"Value({graph.nodes[i].value!r})"
                                              for i in graph.leaves) + "]"]
    if leaves:
        lines.append(f"    {', '.join(leaves)}{',' if len(leaves) == 1 else ''} = leaves")
    for i, n in enumerate(graph.nodes):
        if n.op != "leaf":
            const = "" if n.const is None else repr(n.const)
            expr = OPS[n.op].template.format(*(names[a] for a in n.args), c=const)
            lines.append(f"    {names[i]} = {expr}")
    lines.append(f"    return leaves, {names[-1]}")
    return "\n".join(lines) + "\n"


def script(*, pid: str, outcome: str, target: str, prelude: str, summary: str,
           body: str, profile: str = "", seed: Any = None) -> str:
    """A whole reproducer: docstring, the adapter's prelude (which imports the engine and
    defines ``Value``, ``backward``, ``value`` and ``grad``), helpers, ``body`` (which
    must define ``main() -> int``), and the exit."""
    doc = (f'"""gradcert reproducer: {pid} {outcome} for {target}.\n\n'
           f"{_wrap(summary)}\n\n"
           "Standalone: it imports only the engine under test. Run it with `python` and it\n"
           "prints expected next to actual, then exits 1 while the defect is present and\n"
           "0 once it is fixed. The expected numbers are exact (gradcert's oracle, rounded\n"
           "once); each bound is the tolerance a correct engine stays within.\n"
           f"Found with profile {profile or '?'}, seed {seed}.\n"
           '"""\n')
    return (f"{doc}\nimport math\nimport os\nimport sys\n\n"
            "sys.path.insert(1, os.getcwd())  # import the engine as named, from where you run\n\n"
            f"{prelude.strip()}\n\n{_HELPERS}\n\n"
            f"{body.strip()}\n\n\nif __name__ == \"__main__\":\n    sys.exit(main())\n")


def _wrap(text: str, width: int = 78) -> str:
    out, line = [], ""
    for word in text.replace('"""', "'''").split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join(out + [line])


def _oracle_body(graph: Graph, f: Any, check: Any) -> str:
    from gradcert.oracle import exact_graph, round_to
    from gradcert.oracle.tolerance import tolerance

    dtype = check.caps.dtype
    ex = exact_graph(graph)
    tol = tolerance(graph, ex, dtype=dtype, seed=check.seed)
    grads = [round_to(g, dtype) for g in ex.grad]
    return (build_source(graph) + "\n\n"
            f"EXPECTED_VALUE = {round_to(ex.value, dtype)!r}\n"
            f"EXPECTED_GRADS = {grads!r}\n"
            f"# tolerance model: {tol.describe()}\n"
            f"BOUND_VALUE = {float(tol.value)!r}\n"
            f"BOUND_GRADS = {[float(b) for b in tol.grad]!r}\n\n\n"
            "def main():\n"
            f"    leaves, out = build({check.adapter.make_value})\n"
            "    backward(out)\n"
            "    rows = [(\"value\", EXPECTED_VALUE, value(out), BOUND_VALUE)]\n"
            "    rows += [(f\"grad x{i}\", e, grad(x), b) for i, (x, e, b)\n"
            "             in enumerate(zip(leaves, EXPECTED_GRADS, BOUND_GRADS))]\n"
            "    return 1 if table(rows) else 0\n")


def write(check: Any, f: Any, path: Path) -> Path:
    """Write the reproducer for finding ``f`` of ``check``'s property to ``path``."""
    repro = dict(f.repro or {})
    kind = repro.get("kind", "oracle")
    if kind == "oracle":
        body = _oracle_body(f.graph, f, check)
    elif "body" in repro:
        body = repro["body"]
    else:
        raise ValueError(f"no reproducer for kind {kind!r}")
    seed = "derandomized" if check.profile.derandomize else check.config.seed
    text = script(pid=check.id, outcome=f.outcome, target=check.adapter.target,
                  prelude=check.adapter.reproducer_prelude(), summary=f.summary, body=body,
                  profile=check.profile.name, seed=seed)
    compile(text, str(path), "exec")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
