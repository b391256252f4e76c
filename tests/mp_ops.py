"""Each op written directly in mpmath, independent of the op table, for tests."""


def mp_op(ctx, name, c):
    """The op ``name`` (constant ``c``) as a function of its operands, in context ``ctx``."""
    return {
        "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y, "addc": lambda x: x + c, "raddc": lambda x: c + x,
        "subc": lambda x: x - c, "rsubc": lambda x: c - x, "mulc": lambda x: x * c,
        "rmulc": lambda x: c * x, "divc": lambda x: x / c, "rdivc": lambda x: c / x,
        "neg": lambda x: -x, "powc": lambda x: x**c, "log": ctx.log, "exp": ctx.exp,
        "relu": lambda x: x if x > 0 else 0 * x, "tanh": ctx.tanh,
        "sigmoid": lambda x: 1 / (1 + ctx.exp(-x)),
    }[name]
