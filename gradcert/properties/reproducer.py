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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradcert.graph import Graph
from gradcert.ops import OPS, dispatch, interpreter_source

__all__ = ["build_source", "chain_body", "domain_body", "dtype_body", "host_prelude",
           "isolated_body", "kink_body", "oracle_body", "reuse_body", "script",
           "second_backward_body", "write"]

MAX_INLINE = 2000  # graphs larger than this are written as data plus a small interpreter

_HELPERS = '''
def close(actual, expected, bound, flush=False):
    if actual == expected:
        return True
    if flush and actual == 0.0 and 0.0 < abs(expected) < 2.0**-1022:
        return True  # a subnormal result flushed to 0: a declared convention
    return math.isfinite(actual) and abs(actual - expected) <= bound


def table(rows, flush=False):
    """Print expected vs actual; return how many rows are outside their bound."""
    print(f"{'':>12} {'expected':>25} {'actual':>25} {'bound':>10}")
    bad = 0
    for name, expected, actual, bound in rows:
        ok = close(actual, expected, bound, flush)
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
    """A whole reproducer: docstring, the engine's prelude (which imports the engine and
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


# -- the bodies: one named template per kind of finding ---------------------------------


def oracle_body(graph: Graph, value: str, *, ex: Any, tol: Any, dtype: str,
                alternatives: Sequence[tuple[float, Any, Any]] = (),
                flush: bool = False) -> str:
    """Rebuild ``graph``, backward, and compare value and gradients with the exact ones
    (``ex``, rounded to ``dtype``) within the tolerance model's bounds ``tol``.

    ``alternatives``: (relu'(0), exact, tolerance) for a graph with a relu on its kink,
    any of which passes (a correct engine may take relu'(0) anywhere in [0, 1]);
    ``flush``: a subnormal exact result may be 0 (both declared conventions)."""
    from gradcert.oracle import round_to

    cases = []
    for c, e, t in ((0.0, ex, tol), *alternatives):
        cases.append((c, round_to(e.value, dtype), [round_to(g, dtype) for g in e.grad],
                      float(t.value), [float(b) for b in t.grad]))
    kink = len(cases) > 1
    return (build_source(graph) + "\n\n"
            f"# tolerance model: {tol.describe()}\n"
            "# each case: relu'(0), expected value, expected gradients, their bounds\n"
            f"CASES = {cases!r}\n"
            f"FLUSH = {flush!r}  # a subnormal exact result may be 0\n\n\n"
            "def main():\n"
            f"    leaves, out = build({value})\n"
            "    backward(out)\n"
            "    for c, ev, eg, bv, bg in CASES:\n"
            + ("        print(f\"with relu'(0) = {c}:\")\n" if kink else "")
            + "        rows = [(\"value\", ev, value(out), bv)]\n"
            "        rows += [(f\"grad x{i}\", e, grad(x), b) for i, (x, e, b)\n"
            "                 in enumerate(zip(leaves, eg, bg))]\n"
            "        if not table(rows, FLUSH):\n"
            "            return 0\n"
            "    return 1\n")


def kink_body(value: str, *, x: float, strict: bool = False) -> str:
    """relu at ``x`` (0.0 or -0.0): value 0 and a derivative inside [0, 1] (0 with
    ``strict``)."""
    hi = 0.0 if strict else 1.0
    return ("def main():\n"
            f"    x = {value}({x!r})\n"
            "    out = x.relu()\n    backward(out)\n"
            "    rows = [('value', 0.0, value(out), 0.0)]\n"
            "    d = grad(x)\n"
            f"    print(f\"relu'({x!r}) = {{d!r}}; it must lie in [0, {hi}]\")\n"
            f"    return 1 if table(rows) or not 0.0 <= d <= {hi} else 0\n")


def second_backward_body(graph: Graph, value: str, *, exact: list[float]) -> str:
    """Backward twice on ``graph``'s output: the gradients must double or stay."""
    return (build_source(graph) + "\n\n"
            f"EXACT_GRADS = {exact!r}\n\n\n"
            "def main():\n"
            f"    leaves, out = build({value})\n"
            "    backward(out)\n"
            "    first = [grad(x) for x in leaves]\n"
            "    try:\n"
            "        backward(out)\n"
            "    except Exception as e:\n"
            "        print(f'a second backward raises {type(e).__name__}: {e} '\n"
            "              '(a clear error: fine)')\n"
            "        return 0\n"
            "    second = [grad(x) for x in leaves]\n"
            "    print('exact gradient:        ', EXACT_GRADS)\n"
            "    print('after one backward:    ', first)\n"
            "    print('after a second one:    ', second)\n"
            "    acc = table([(f'x{i} (acc.)', 2 * a, b, 1e-12 * abs(a))\n"
            "                 for i, (a, b) in enumerate(zip(first, second))])\n"
            "    reset = sum(not close(b, a, 1e-12 * abs(a)) for a, b in zip(first, second))\n"
            "    if acc == 0 or reset == 0:\n"
            "        return 0\n"
            "    print('neither accumulated (2x the first) nor reset (= the first)')\n"
            "    return 1\n")


def reuse_body(graph: Graph, value: str, *, comb: str, exact: list[float],
               added: list[float], reset: list[float]) -> str:
    """Build ``graph`` without its last node (y), backward y, then z = y ``comb`` x0 on y
    and its first leaf, and backward z: each leaf's gradient must have grown by the
    exact dz/dleaf (``exact``, within ``added``) or become it (within ``reset``)."""
    first_graph = Graph(graph.nodes[:-1])
    sign = {"mul": "*", "add": "+"}[comb]
    return (build_source(first_graph) + "\n\n"
            f"EXACT_DZ = {exact!r}  # exact dz/dleaf for z = y {sign} x0\n"
            f"BOUND_ADDED = {added!r}\n"
            f"BOUND_RESET = {reset!r}\n\n\n"
            "def main():\n"
            f"    leaves, y = build({value})\n"
            "    backward(y)\n"
            "    first = [grad(x) for x in leaves]\n"
            f"    z = y {sign} leaves[0]  # y, already backpropagated, reused\n"
            "    backward(z)\n"
            "    after = [grad(x) for x in leaves]\n"
            "    print('after backward of y:   ', first)\n"
            "    print('after backward of z:   ', after)\n"
            "    print('exact dz/dleaf:        ', EXACT_DZ)\n"
            "    wrong = 0\n"
            "    for i, (a, b, e, ta, tr) in enumerate(zip(first, after, EXACT_DZ, BOUND_ADDED,\n"
            "                                              BOUND_RESET)):\n"
            "        if close(b, a + e, ta + 2.0**-52 * abs(b)) or close(b, e, tr):\n"
            "            continue\n"
            "        wrong += 1\n"
            "        print(f'x{i}: {b!r} is neither {a + e!r} (accumulated) nor {e!r} (reset)'\n"
            "              '  <-- wrong')\n"
            "    if wrong and all(close(b, 2 * a + e, 2 * ta + 2.0**-52 * abs(b))\n"
            "                     for a, b, e, ta in zip(first, after, EXACT_DZ, BOUND_ADDED)):\n"
            "        print('y passes on its gradient of the first backward again '\n"
            "              '(intermediate gradients never reset?)')\n"
            "    elif wrong:\n"
            "        print('the graph of y is skipped by the second backward '\n"
            "              '(visited flags never cleared?)')\n"
            "    return 1 if wrong else 0\n")


def chain_body(value: str, *, n: int, raised: bool, adds: bool = False) -> str:
    """``sum()`` over ``n`` Values (``x0 + x1 + ...`` with ``adds``, for an engine without
    ``__radd__``) and backward, in the main thread; with ``raised``, under
    a large stack (re-run in a child process) and a recursion limit of 20 frames per node,
    as the engine host runs deep chains."""
    setup = ("    if '--child' not in sys.argv:\n"
             "        import resource\n"
             "        import subprocess\n"
             "        def big_stack():\n"
             "            soft, hard = resource.getrlimit(resource.RLIMIT_STACK)\n"
             "            want = 512 * 2**20\n"
             "            if hard != resource.RLIM_INFINITY:\n"
             "                want = min(want, hard)\n"
             "            resource.setrlimit(resource.RLIMIT_STACK, (want, hard))\n"
             "        return subprocess.run([sys.executable, __file__, '--child'],\n"
             "                              preexec_fn=big_stack).returncode\n"
             "    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * N + 1000))\n"
             if raised else "")
    return (f"N = {n}\n\n\n"
            "def main():\n" + setup +
            "    try:\n"
            f"        xs = [{value}(1.0) for _ in range(N)]\n"
            + ("        out = xs[0]\n        for x in xs[1:]:\n            out = out + x\n"
               if adds else "        out = sum(xs)\n") +
            "        backward(out)\n"
            "        gs = [grad(x) for x in xs]\n"
            "    except BaseException as e:\n"
            "        print(f'sum() over {N} Values: backward raised {e!r}')\n"
            "        return 1\n"
            "    print(f'sum() over {N} Values: value {value(out)!r}, gradients from '\n"
            "          f'{min(gs)!r} to {max(gs)!r}')\n"
            "    return 0 if [value(out), min(gs), max(gs)] == [float(N), 1.0, 1.0] else 1\n")


def domain_body(value: str, *, cases: list[tuple[str, str, tuple[float, ...],
                                                  float | None]]) -> str:
    """Each domain edge ``(case, op, operands, const)`` must raise or give inf/nan."""
    lines = ["CASES = ["]
    for case, op, xs, const in cases:
        expr = OPS[op].template.format(*(f"{value}({x!r})" for x in xs),
                                       c=repr(const) if const is not None else "")
        lines.append(f"    ({case!r}, lambda: {expr}),")
    lines.append("]")
    return ("\n".join(lines) + "\n\n\n"
            "def main():\n"
            "    bad = 0\n"
            "    for case, f in CASES:\n"
            "        try:\n"
            "            v = value(f())\n"
            "        except Exception as e:\n"
            "            print(f'{case}: raises {type(e).__name__}: {e} (fine)')\n"
            "            continue\n"
            "        ok = not math.isfinite(v)\n"
            "        bad += not ok\n"
            "        print(f'{case}: {v!r}' + ('' if ok else '   <-- silently finite'))\n"
            "    return 1 if bad else 0\n")


def dtype_body(value: str, *, x: float, f32: float) -> str:
    """A leaf holding ``x`` (which float32 rounds to ``f32``) must read back exactly."""
    return (f"X = {x!r}  # needs float64: float32 rounds it to {f32!r}\n\n\n"
            "def main():\n"
            f"    got = value({value}(X))\n"
            "    print(f'a leaf holding {X!r} reads back as {got!r}')\n"
            "    return 0 if got == X else 1\n")


def isolated_body(graph: Graph, value: str, *, cpu: float | None) -> str:
    """Build ``graph`` and backward in a child process limited to ``cpu`` seconds of CPU
    (if given): exit 1 while the child crashes, raises or runs over its limit."""
    limit = "None" if cpu is None else repr(float(cpu))
    return (build_source(graph) + "\n\n"
            f"CPU_LIMIT = {limit}  # seconds of CPU the engine had\n\n\n"
            "def child():\n"
            f"    leaves, out = build({value})\n"
            "    backward(out)\n"
            "    print('value:', value(out))\n"
            "    print('gradients:', [grad(x) for x in leaves])\n\n\n"
            "def main():\n"
            "    if '--child' in sys.argv:\n"
            "        child()\n"
            "        return 0\n"
            "    import resource\n"
            "    import signal\n"
            "    import subprocess\n"
            "    def limit():\n"
            "        if CPU_LIMIT is not None:\n"
            "            s = math.ceil(CPU_LIMIT)\n"
            "            resource.setrlimit(resource.RLIMIT_CPU, (s, s + 1))\n"
            "    run = subprocess.run([sys.executable, __file__, '--child'], preexec_fn=limit,\n"
            "                         stdin=subprocess.DEVNULL)\n"
            "    code = run.returncode\n"
            "    if code == 0:\n"
            "        print('the engine ran the graph without crashing or hanging')\n"
            "        return 0\n"
            "    if code < 0 and -code in (signal.SIGXCPU, signal.SIGKILL):\n"
            "        print(f'the engine used more than {CPU_LIMIT} s of CPU on the graph')\n"
            "    elif code < 0:\n"
            "        print(f'the engine was killed by {signal.Signals(-code).name}')\n"
            "    else:\n"
            "        print(f'the engine ended with exit code {code}')\n"
            "    return 1\n")


def _kink_cases(check: Any, graph: Graph, ex: Any) -> list[tuple[float, Any, Any]]:
    """The exact answers with relu'(0) = 0.5 and 1 where a relu of ``graph`` sits on its
    kink (none with --strict), so the reproducer passes on any usual convention."""
    kinks = tuple(k for k in getattr(ex, "kinks", ()) or () if graph.nodes[k].op == "relu")
    if not kinks or check.config.strict:
        return []
    from gradcert.oracle import exact_graph
    from gradcert.oracle.tolerance import tolerance
    from gradcert.properties.conventions import kink_graph

    out = []
    for c in (0.5, 1.0):
        g = kink_graph(graph, kinks, c)
        e = exact_graph(g)
        out.append((c, e, tolerance(g, e, dtype=check.caps.dtype, seed=check.seed)))
    return out


def write(check: Any, f: Any, path: Path, outcome: str | None = None) -> Path:
    """Write the reproducer for finding ``f`` of ``check``'s property to ``path``.

    ``f.repro`` names the template (``kind``) and its parameters; the engine's
    prelude and its name for the leaf constructor come from its host.
    """
    repro = dict(f.repro or {})
    kind = repro.pop("kind", "oracle")
    info = check.engine.info
    value = info.make_value
    if kind == "oracle":
        ex, tol = repro.get("ex"), repro.get("tol")
        if ex is None or tol is None:
            from gradcert.oracle import exact_graph
            from gradcert.oracle.tolerance import tolerance

            ex = exact_graph(f.graph)
            tol = tolerance(f.graph, ex, dtype=check.caps.dtype, seed=check.seed)
        body = oracle_body(f.graph, value, ex=ex, tol=tol, dtype=check.caps.dtype,
                           alternatives=_kink_cases(check, f.graph, ex),
                           flush=not check.config.strict)
    elif kind in _GRAPH_TEMPLATES:
        body = _GRAPH_TEMPLATES[kind](f.graph, value, **repro)
    elif kind in _TEMPLATES:
        body = _TEMPLATES[kind](value, **repro)
    else:
        raise ValueError(f"no reproducer template {kind!r}")
    seed = "derandomized" if check.profile.derandomize else check.config.seed
    text = script(pid=check.id, outcome=outcome or f.outcome, target=info.target,
                  prelude=prelude(check), summary=f.summary, body=body,
                  profile=check.profile.name, seed=seed)
    compile(text, str(path), "exec")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def prelude(check: Any) -> str:
    """The engine's reproducer prelude, as its host gave it; for a host that gives none
    (one in another language), :func:`host_prelude` for the host's command."""
    given = str(check.engine.info.prelude or "")
    if given.strip() or not check.config.host:
        return given
    return host_prelude(list(check.config.host), check.config.target)


_HOST_PRELUDE = '''import json
import struct
import subprocess

HOST_COMMAND = {command!r}
TARGET = {target!r}
_TAPE = []  # every node recorded so far: ["leaf", x], [op, [args]] or [op, [args], c]
_HOST = []  # the host process and its pipes, started on first use
_WHERE = {{}}  # tape index -> [graph id, node]: the node the host built for it


def _call(op, **fields):
    """One request to the engine's host (docs/host-protocol.md); its result."""
    if not _HOST:
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        env = dict(os.environ, GRADCERT_HOST_FDS=f"{{r1}},{{w2}}")
        proc = subprocess.Popen(HOST_COMMAND, stdin=subprocess.DEVNULL, pass_fds=(r1, w2),
                                env=env)
        os.close(r1)
        os.close(w2)
        _HOST.extend([proc, os.fdopen(w1, "wb"), os.fdopen(r2, "rb"), [0]])
        _call("hello", version=1, target=TARGET)
    proc, w, r, n = _HOST
    n[0] += 1
    body = json.dumps({{"id": n[0], "op": op, **fields}}).encode()
    w.write(struct.pack(">I", len(body)) + body)
    w.flush()
    head = r.read(4)
    if len(head) < 4:
        raise RuntimeError(f"the engine host ended (exit code {{proc.wait()}})")
    reply = json.loads(r.read(struct.unpack(">I", head)[0]))
    if not reply.get("ok"):
        raise RuntimeError(reply["error"]["message"])
    return reply["result"]


class Value:
    """A recorded scalar: the host builds what was recorded when a result is asked for."""

    def __init__(self, data=None, node=None):
        _TAPE.append(["leaf", float(data)] if node is None else node)
        self.i = len(_TAPE) - 1

    def _op(self, op, args, c=None):
        return Value(node=[op, [a.i for a in args]] + ([] if c is None else [float(c)]))

    def _bin(self, op, other, opc):
        if isinstance(other, Value) and op is not None:
            return self._op(op, [self, other])
        if not isinstance(other, Value) and opc is not None:
            return self._op(opc, [self], other)
        return NotImplemented

{methods}

def _build():
    """Build in the host what was recorded since the last build, on the nodes built
    before (as a script reusing an engine's objects does)."""
    new = range(len(_WHERE), len(_TAPE))
    ops = [i for i in new if _TAPE[i][0] != "leaf"]
    old = sorted({{a for i in ops for a in _TAPE[i][1] if a < new.start}})
    fresh = [i for i in new if _TAPE[i][0] == "leaf"]
    if not old:  # nothing to build on: the new nodes alone, as recorded
        pos = {{i: k for k, i in enumerate(new)}}
        graph = [n if n[0] == "leaf" else [n[0], [pos[a] for a in n[1]]] + n[2:]
                 for n in (_TAPE[i] for i in new)]
        g = _call("build", graph=graph, free=not _WHERE)["graph"]
        _WHERE.update({{i: [g, pos[i]] for i in new}})
        return
    if fresh:  # new leaves get handles of their own first
        g = _call("build", graph=[_TAPE[i] for i in fresh])["graph"]
        _WHERE.update({{i: [g, k] for k, i in enumerate(fresh)}})
    base = old + fresh  # leaves of the graph built on handles
    pos = {{i: k for k, i in enumerate(base + ops)}}
    graph = [["leaf", 0.0]] * len(base) + [
        [_TAPE[i][0], [pos[a] for a in _TAPE[i][1]]] + _TAPE[i][2:] for i in ops]
    g = _call("build", graph=graph, leaves=[_WHERE[i] for i in base])["graph"]
    _WHERE.update({{i: [g, pos[i]] for i in ops}})


def _ref(v):
    if v.i not in _WHERE:
        _build()
    return _WHERE[v.i]


def backward(out):
    _call("backward", ref=_ref(out))


def value(v):
    return float(_call("value", ref=_ref(v))["value"])


def grad(x):
    return float(_call("grads", refs=[_ref(x)])["grads"][0])
'''


def host_prelude(command: list[str], target: str | None) -> str:
    """A prelude that drives the engine through its host's ``command`` with the protocol
    (standard library only): a recording ``Value`` whose graph the host builds when a
    value or gradient is read, and ``backward``, ``value``, ``grad`` as requests."""
    return _HOST_PRELUDE.format(command=command, target=target, methods=_recording_methods())


def _recording_methods() -> str:
    """The host prelude's ``Value`` methods, one per Python method the op table spells
    (``__add__`` records add or addc, ``sqrt`` records sqrt, ...)."""
    lines = []
    for method, forms in dispatch().items():
        by = dict(forms)
        if "none" in by:
            lines.append(f"    def {method}(self): return self._op({by['none']!r}, [self])")
        else:
            lines.append(f"    def {method}(self, o): return self._bin({by.get('node')!r}, o, "
                         f"{by.get('const')!r})")
    return "\n".join(lines).replace("'", '"') + "\n"


_GRAPH_TEMPLATES: dict[str, Any] = {"second_backward": second_backward_body,
                                    "reuse_after_backward": reuse_body,
                                    "isolated": isolated_body}
_TEMPLATES: dict[str, Any] = {"kink": kink_body, "chain": chain_body, "domain": domain_body,
                              "dtype": dtype_body}
