"""Source of a reproducer prelude for functional engines (JAX, HIPS autograd).

The prelude defines a small recording ``Value``: operators compute eagerly on
the engine's scalars and remember how; ``backward(out)`` replays the
recorded graph inside the engine's ``value_and_grad``. ``{header}`` imports
the engine and defines ``np``, ``relu``, ``sigmoid`` and ``value_and_grad``.
"""

TEMPLATE = '''{header}
import itertools
import operator

_count = itertools.count()


class Value:
    """A recorded scalar: data now, gradients when backward() replays it."""

    def __init__(self, data, fn=None, args=()):
        self.fn, self.args, self.i = fn, args, next(_count)
        self.data = np.float64(data) if fn is None else fn(*[a.data for a in args])
        self.grad = 0.0

    def _op(self, fn, *args):
        return Value(None, fn, (self, *args))

    def log(self): return self._op(np.log)
    def exp(self): return self._op(np.exp)
    def tanh(self): return self._op(np.tanh)
    def relu(self): return self._op(relu)
    def sigmoid(self): return self._op(sigmoid)
    def __neg__(self): return self._op(operator.neg)
    def __pow__(self, c): return self._op(lambda a: a ** c)


def _binary(f):
    def op(self, other):
        if isinstance(other, Value):
            return self._op(f, other)
        return self._op(lambda a: f(a, other))
    return op


def _reflected(f):
    return lambda self, other: self._op(lambda a: f(other, a))


for _name, _f in [("add", operator.add), ("sub", operator.sub),
                  ("mul", operator.mul), ("truediv", operator.truediv)]:
    setattr(Value, f"__{{_name}}__", _binary(_f))
    setattr(Value, f"__r{{_name}}__", _reflected(_f))


def backward(out):
    """Replay out's graph under value_and_grad; add the gradients to the leaves."""
    nodes, seen, stack = [], {{id(out)}}, [out]
    while stack:
        v = stack.pop()
        nodes.append(v)
        for a in v.args:
            if id(a) not in seen:
                seen.add(id(a))
                stack.append(a)
    nodes.sort(key=lambda v: v.i)
    leaves = [v for v in nodes if v.fn is None]

    def f(xs):
        vals = {{}}
        for k, v in enumerate(leaves):
            vals[id(v)] = xs[k]
        for v in nodes:
            if v.fn is not None:
                vals[id(v)] = v.fn(*[vals[id(a)] for a in v.args])
        return vals[id(out)]

    _, grads = value_and_grad(f)(np.array([float(v.data) for v in leaves]))
    for v, g in zip(leaves, grads):
        v.grad += float(g)


def value(v):
    return float(v.data)


def grad(x):
    return float(x.grad)
'''
