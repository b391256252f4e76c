"""Each op written directly in mpmath, independent of the op table, for tests:
its value, its partial derivatives (from the textbook, with the table's
declared conventions at kinks: relu'(0) = abs'(0) = 0, max and min split a
tie evenly), and whether its operands are in its domain."""


def mp_op(ctx, name, c):
    """The op ``name`` (constant ``c``) as a function of its operands, in context ``ctx``."""
    return {
        "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y, "addc": lambda x: x + c, "raddc": lambda x: c + x,
        "subc": lambda x: x - c, "rsubc": lambda x: c - x, "mulc": lambda x: x * c,
        "rmulc": lambda x: c * x, "divc": lambda x: x / c, "rdivc": lambda x: c / x,
        "neg": lambda x: -x, "powc": lambda x: ctx.power(x, c), "log": ctx.log,
        "exp": ctx.exp, "relu": lambda x: x if x > 0 else 0 * x, "tanh": ctx.tanh,
        "sigmoid": lambda x: 1 / (1 + ctx.exp(-x)),
        "sqrt": ctx.sqrt, "abs": abs, "max": lambda x, y: max(x, y),
        "min": lambda x, y: min(x, y), "log1p": ctx.log1p, "expm1": ctx.expm1,
        "erf": ctx.erf, "sin": ctx.sin, "cos": ctx.cos, "pow": ctx.power,
    }[name]


def _sign(x):
    return 1 if x > 0 else -1 if x < 0 else 0


def _tie(x, y, first):
    return (1, 0) if first else (0, 1) if x != y else (0.5, 0.5)


def mp_partials(ctx, name, c):
    """The exact partial derivatives of op ``name`` as a function of its operands."""
    one = ctx.mpf(1)
    return {
        "add": lambda x, y: (one, one), "sub": lambda x, y: (one, -one),
        "mul": lambda x, y: (y, x), "div": lambda x, y: (1 / y, -x / (y * y)),
        "addc": lambda x: (one,), "raddc": lambda x: (one,), "subc": lambda x: (one,),
        "rsubc": lambda x: (-one,), "mulc": lambda x: (c,), "rmulc": lambda x: (c,),
        "divc": lambda x: (1 / c,), "rdivc": lambda x: (-c / (x * x),),
        "neg": lambda x: (-one,),
        "powc": lambda x: (c * ctx.power(x, c - 1) if c not in (0, 1) and x else
                           one if c == 1 else 0 * one,),
        "log": lambda x: (1 / x,), "exp": lambda x: (ctx.exp(x),),
        "relu": lambda x: (one if x > 0 else 0 * one,),
        "tanh": lambda x: (ctx.sech(x) ** 2,),
        "sigmoid": lambda x: (1 / (4 * ctx.cosh(x / 2) ** 2),),
        "sqrt": lambda x: (1 / (2 * ctx.sqrt(x)),),
        "abs": lambda x: (one * _sign(x),),
        "max": lambda x, y: tuple(one * t for t in _tie(x, y, x > y)),
        "min": lambda x, y: tuple(one * t for t in _tie(x, y, x < y)),
        "log1p": lambda x: (1 / (1 + x),), "expm1": lambda x: (ctx.exp(x),),
        "erf": lambda x: (2 / ctx.sqrt(ctx.pi) * ctx.exp(-x * x),),
        "sin": lambda x: (ctx.cos(x),), "cos": lambda x: (-ctx.sin(x),),
        "pow": lambda x, y: (y * ctx.power(x, y - 1), ctx.power(x, y) * ctx.log(x)),
    }[name]


def mp_in_domain(name, xs, c):
    """Whether exact operands ``xs`` (and constant ``c``) are in op ``name``'s domain."""
    x = xs[0]
    if name == "div":
        return xs[1] != 0
    if name == "divc":
        return c != 0
    if name == "rdivc":
        return x != 0
    if name == "powc":
        integer = int(c) == c
        return x > 0 or (integer and (c >= 0 or x != 0))
    if name in ("log", "sqrt", "pow"):
        return x > 0
    if name == "log1p":
        return x > -1
    return True
