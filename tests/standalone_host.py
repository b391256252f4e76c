"""An engine host written without gradcert: a tiny scalar engine behind the host protocol.

It shows what an engine in another language implements to be certified with
``gradcert certify --host 'CMD'`` (docs/host-protocol.md): read framed JSON
requests from the file descriptor named first in GRADCERT_HOST_FDS, answer on
the second. Only the standard library is used. ``--bug exp`` plants a wrong
derivative of exp (exp'(x) = x), so a certification can fail too, and
``--bug visited`` a visited flag that one backward sets and none clears;
``--version N`` announces another protocol version.
"""

import json
import math
import os
import struct
import sys

BUG = sys.argv[sys.argv.index("--bug") + 1] if "--bug" in sys.argv else None
VERSION = int(sys.argv[sys.argv.index("--version") + 1]) if "--version" in sys.argv else 1


class V:
    """A scalar with reverse mode: data, grad, children and local derivatives."""

    def __init__(self, data, children=(), local=()):
        self.data, self.grad, self.children, self.local = data, 0.0, children, local


def leaf(x):
    return V(x)


def sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def apply(op, args, c):
    a = args[0]
    b = args[1] if len(args) > 1 else None
    x = a.data
    if op == "add":
        return V(x + b.data, (a, b), (1.0, 1.0))
    if op == "sub":
        return V(x - b.data, (a, b), (1.0, -1.0))
    if op == "mul":
        return V(x * b.data, (a, b), (b.data, x))
    if op == "div":
        q = x / b.data  # d/dy = -q / y: no y * y to underflow
        return V(q, (a, b), (1 / b.data, -q / b.data))
    if op in ("addc", "raddc"):
        return V(x + c, (a,), (1.0,))
    if op == "subc":
        return V(x - c, (a,), (1.0,))
    if op == "rsubc":
        return V(c - x, (a,), (-1.0,))
    if op in ("mulc", "rmulc"):
        return V(x * c, (a,), (c,))
    if op == "divc":
        return V(x / c, (a,), (1 / c,))
    if op == "rdivc":
        q = c / x
        return V(q, (a,), (-q / x,))
    if op == "neg":
        return V(-x, (a,), (-1.0,))
    if op == "powc":
        return V(x ** c, (a,), (c * x ** (c - 1) if c != 0 else 0.0,))
    if op == "log":
        return V(math.log(x), (a,), (1 / x,))
    if op == "exp":
        e = math.exp(x)
        return V(e, (a,), (x if BUG == "exp" else e,))
    if op == "relu":
        return V(max(x, 0.0), (a,), (1.0 if x > 0 else 0.0,))
    if op == "tanh":
        t = math.tanh(x)
        return V(t, (a,), (1 - t * t,))
    if op == "sigmoid":
        s = sigmoid(x)
        return V(s, (a,), (s * (1 - s),))
    raise ValueError(f"no op {op}")


OPS = ["add", "sub", "mul", "div", "addc", "raddc", "subc", "rsubc", "mulc", "rmulc", "divc",
       "rdivc", "neg", "powc", "log", "exp", "relu", "tanh", "sigmoid"]


def backward(out):
    """Reverse mode from ``out``: leaf gradients accumulate (a second backward doubles
    them); intermediate adjoints live only during the call."""
    order, seen, stack = [], set(), [(out, False)]
    while stack:
        v, done = stack.pop()
        if done:
            order.append(v)
        elif id(v) not in seen:
            seen.add(id(v))
            if BUG == "visited" and v is not out and getattr(v, "visited", False):
                continue  # the planted bug: a flag set by one backward, never cleared
            v.visited = True
            stack.append((v, True))
            stack.extend((c, False) for c in v.children)
    adj = {id(out): 1.0}
    for v in reversed(order):
        a = adj.get(id(v), 0.0)
        if not v.children:
            v.grad += a
        for c, d in zip(v.children, v.local, strict=True):
            adj[id(c)] = adj.get(id(c), 0.0) + d * a


def num(x):
    return x if math.isfinite(x) else ("nan" if x != x else ("inf" if x > 0 else "-inf"))


def build(graph, leaves=None):
    """Nodes arrive as ["leaf", x], [op, [args]] or [op, [args], constant]."""
    given = iter(leaves) if leaves is not None else None
    handles = []
    for node in graph:
        if node[0] == "leaf":
            handles.append(next(given) if given else leaf(float(node[1])))
        else:
            const = node[2] if len(node) > 2 else None
            handles.append(apply(node[0], [handles[a] for a in node[1]], const))
    return handles


BUILT = {}


def handle(req):
    op = req["op"]
    if op == "hello":
        if req.get("version") != 1:
            raise LookupError("version")
        return {"version": VERSION, "engine": {"name": "standalone", "target": "standalone"}}
    if op == "capabilities":
        return {"ops": OPS, "dtype": "float64", "has_zero_grad": True, "has_adam": False,
                "functional": False, "notes": {"relu'(0)": "0.0"}}
    if op == "run":
        hs = build(req["graph"])
        backward(hs[-1])
        ls = [h for h, n in zip(hs, req["graph"], strict=True) if n[0] == "leaf"]
        return {"value": num(hs[-1].data), "grads": [num(x.grad) for x in ls]}
    if op == "forward":
        return {"value": num(build(req["graph"])[-1].data)}
    if op == "build":
        leaves = req.get("leaves")
        if req.get("free"):
            given = None if leaves is None else [BUILT[g][i] for g, i in leaves]
            BUILT.clear()
            hs = build(req["graph"], given)
            BUILT[len(BUILT) + 1] = hs
            return {"graph": len(BUILT)}
        hs = build(req["graph"], None if leaves is None else [BUILT[g][i] for g, i in leaves])
        BUILT[len(BUILT) + 1] = hs
        return {"graph": len(BUILT)}
    if op == "value":
        g, i = req["ref"]
        return {"value": num(BUILT[g][i].data)}
    if op == "backward":
        g, i = req["ref"]
        backward(BUILT[g][i])
        return {}
    if op == "grads":
        return {"grads": [num(BUILT[g][i].grad) for g, i in req["refs"]]}
    if op == "zero_grad":
        for g, i in req["refs"]:
            BUILT[g][i].grad = 0.0
        return {}
    if op == "adam_step":
        raise NotImplementedError("no Adam")
    if op in ("free", "exit"):
        return {}
    raise LookupError(op)


def main():
    rfd, wfd = (int(x) for x in os.environ["GRADCERT_HOST_FDS"].split(","))
    rf, wf = os.fdopen(rfd, "rb"), os.fdopen(wfd, "wb")
    while True:
        head = rf.read(4)
        if len(head) < 4:
            return
        req = json.loads(rf.read(struct.unpack(">I", head)[0]))
        try:
            reply = {"id": req["id"], "ok": True, "result": handle(req)}
        except NotImplementedError as e:
            reply = {"id": req["id"], "ok": False,
                     "error": {"kind": "unsupported", "type": "NotImplementedError",
                               "message": str(e)}}
        except LookupError as e:
            reply = {"id": req["id"], "ok": False,
                     "error": {"kind": "request", "type": type(e).__name__,
                               "message": f"not understood: {e}"}}
        except Exception as e:
            reply = {"id": req["id"], "ok": False,
                     "error": {"kind": "engine", "type": type(e).__name__,
                               "message": f"the engine raised {type(e).__name__}: {e}"}}
        body = json.dumps(reply).encode()
        wf.write(struct.pack(">I", len(body)) + body)
        wf.flush()
        if req["op"] == "exit":
            return


if __name__ == "__main__":
    main()
