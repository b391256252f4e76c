"""Custom torch.autograd.Functions: correct ones and their realistic bugs."""

import torch


def _f64(*shape, seed=0, low=-2.0, high=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64) * (high - low) + low


# -- a float32 leak: log-sum-exp whose backward computes softmax in float32 ----------


class LogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        m = x.max(dim=-1, keepdim=True).values
        y = m + torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * torch.exp(x - y)


class LogSumExpF32Leak(LogSumExp):
    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * torch.softmax(x.float(), dim=-1).double()  # relative error ~1e-8


# -- a wrong branch above a threshold: softplus' = 0 above 20 -------------------------


class Softplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 20, x, torch.log1p(torch.exp(x)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.where(x > 20, torch.ones_like(x), torch.sigmoid(x))


class SoftplusThresholdBug(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.where(x > 20, torch.zeros_like(x), torch.sigmoid(x))


# -- a missing term under broadcasting: the bias gradient of one row only ------------


class AddBias(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b):
        return x + b

    @staticmethod
    def backward(ctx, g):
        return g, g.sum(dim=0)


class AddBiasOneRow(AddBias):
    @staticmethod
    def backward(ctx, g):
        return g, g[0]  # forgot to sum over the broadcast rows


# -- a wrong reduction axis: softmax's backward sums over the batch -------------------


class Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.softmax(x, dim=-1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(dim=-1, keepdim=True))


class SoftmaxWrongAxis(Softmax):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(dim=0, keepdim=True))


# -- an epsilon guard: log's backward divides by x + 1e-8 ------------------------------


class Log(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class LogEpsGuard(Log):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (x + 1e-8)


CATALOGUE = [
    ("float32 leak", LogSumExp.apply, LogSumExpF32Leak.apply,
     lambda: (_f64(3, 5, seed=1),), False),
    ("wrong branch above a threshold", Softplus.apply, SoftplusThresholdBug.apply,
     lambda: (_f64(6, seed=2),), True),
    ("missing term under broadcasting", AddBias.apply, AddBiasOneRow.apply,
     lambda: (_f64(3, 4, seed=3), _f64(4, seed=4)), False),
    ("wrong reduction axis", Softmax.apply, SoftmaxWrongAxis.apply,
     lambda: (_f64(3, 4, seed=5),), False),
    ("an epsilon guard", Log.apply, LogEpsGuard.apply,
     lambda: (_f64(5, seed=6, low=0.5, high=3.0),), False),
]
