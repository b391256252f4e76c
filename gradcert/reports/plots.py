"""Accuracy plots as inline SVG (matplotlib, no pyplot, no global state).

Every plot shows the error as a fraction of its tolerance bound on a log
axis, with the bound (1) drawn as a line and the region beyond it shaded, so
passing spread and failing outliers read apart at a glance. Several engines
share one plot in colour-blind-safe colours (Okabe and Ito's palette) with a
legend. Errors below ``FLOOR`` (exact results included) are drawn at the
floor; whole-graph errors appear only against graph size, never as an op.

matplotlib is one of gradcert's dependencies, imported only here and only when a
plot is drawn; where it cannot be imported each function raises
:class:`PlotsUnavailable` and the HTML report says so.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gradcert.results import Results, Sample

__all__ = ["COLOURS", "FLOOR", "PlotsUnavailable", "Series", "bound_by_op_svg",
           "bound_vs_input_svg", "bound_vs_size_svg", "comparison_plots", "report_plots",
           "series_of"]

# Okabe & Ito (2008), distinguishable with every common colour-vision deficiency.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
           "#F0E442")
FLOOR = 1e-6  # errors below this fraction of the bound are drawn at it
_BAD = "#cf222e"
_MARKERS = {"grad": "o", "value": "^"}


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed."""


@dataclass(frozen=True)
class Series:
    """One engine's samples, drawn in one colour."""

    label: str
    samples: Sequence[Sample]
    colour: str = COLOURS[0]


def series_of(results: Sequence[Results]) -> list[Series]:
    """One :class:`Series` per result, coloured in order."""
    return [Series(r.target, r.samples, COLOURS[i % len(COLOURS)])
            for i, r in enumerate(results)]


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.figure import Figure
    except ImportError as e:
        raise PlotsUnavailable(f"plots need matplotlib, which cannot be imported: {e}") from e
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasSVG(fig)
    return fig


def _svg(fig: Any) -> str:
    from matplotlib import rc_context

    buf = io.StringIO()
    # Stable ids and text kept as text: reports diff cleanly and stay small; the
    # scatter points are rasterized (an inline PNG) so thousands of samples stay light.
    with rc_context({"svg.hashsalt": "gradcert", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", dpi=150, metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):] if "<svg" in text else text


def _y(s: Sample, lane: int = 0) -> float | None:
    """A sample's plotted error: its fraction of the bound, floored (each engine a little
    above the last within the floor band, so exact results of several engines all
    show); None without one."""
    f = s.of_bound
    if math.isnan(f):
        return None
    return FLOOR * 1.6**lane if f < FLOOR else (1e12 if math.isinf(f) else f)


def _bound_axis(ax: Any, axis: str, top: float) -> None:
    """Log scale for the error axis, the bound drawn at 1 and the failing side shaded."""
    top = max(10.0, top * 3)
    if axis == "x":
        ax.set_xscale("log")
        ax.set_xlim(FLOOR / 2, top)
        ax.axvspan(1.0, top, color=_BAD, alpha=0.07, lw=0)
        ax.axvline(1.0, color=_BAD, lw=1.2, ls="--")
    else:
        ax.set_yscale("log")
        ax.set_ylim(FLOOR / 2, top)
        ax.axhspan(1.0, top, color=_BAD, alpha=0.07, lw=0)
        ax.axhline(1.0, color=_BAD, lw=1.2, ls="--")


def _floor_ticks(ax: Any, axis: str) -> None:
    """Ticks on the error axis: the floor, 1e-3, the bound at 1 and at most three
    decades above it."""
    from matplotlib.ticker import FixedLocator, NullLocator

    lim = ax.get_xlim() if axis == "x" else ax.get_ylim()
    top = math.floor(math.log10(lim[1]))
    step = max(2, math.ceil(top / 3))
    exps = [-3, 0, *range(step, top + 1, step)]
    ticks = [FLOOR] + [10.0**e for e in exps]
    labels = ["≤1e-6"] + [f"1e{e}" if e else "1" for e in exps]
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(ticks))
    target.set_minor_locator(NullLocator())
    (ax.set_xticklabels if axis == "x" else ax.set_yticklabels)(labels)


def _unique(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    seen = sorted(set(points))
    return [p[0] for p in seen], [p[1] for p in seen]


def _legend(fig: Any, series: Sequence[Series], kinds: bool) -> None:
    from matplotlib.lines import Line2D

    handles = []
    if len(series) > 1:
        handles += [Line2D([], [], ls="", marker="s", ms=8, color=s.colour, label=s.label)
                    for s in series]
    if kinds:
        handles += [Line2D([], [], ls="", marker=m, ms=6, mfc="none",
                           color=COLOURS[0 if k == "grad" else 1] if len(series) == 1
                           else "#444", label="gradient" if k == "grad" else "value")
                    for k, m in _MARKERS.items()]
    handles.append(Line2D([], [], color=_BAD, ls="--", label="bound (error = 1 × bound)"))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 6),
               frameon=False, fontsize=9)


def _style(series: Sequence[Series], j: int, kind: str) -> str:
    """One engine: a colour per kind; several: a colour per engine (kinds by marker)."""
    return COLOURS[0 if kind == "grad" else 1] if len(series) == 1 else series[j].colour


def bound_by_op_svg(series: Sequence[Series]) -> str:
    """Per op, every sampled error of values and gradients over its bound (log axis),
    one strip per engine (or per kind, for one engine).

    >>> svg = bound_by_op_svg([Series("e", [Sample("grad", op="mul", of_bound=0.5)])])
    >>> svg.startswith("<svg") and "mul" in svg and "bound" in svg
    True
    """
    ops = sorted({s.op for se in series for s in se.samples if s.op and s.kind in _MARKERS})
    lanes = [(j, k) for j in range(len(series)) for k in _MARKERS] if len(series) == 1 \
        else [(j, None) for j in range(len(series))]
    fig = _figure(7.5, (0.12 * len(lanes) + 0.12) * max(len(ops), 3) + 1.3)
    ax = fig.add_subplot()
    top = 1.0
    step = 0.8 / len(lanes)
    for lane, (j, only) in enumerate(lanes):
        for kind, marker in _MARKERS.items():
            if only is not None and kind != only:
                continue
            pts = []
            for s in series[j].samples:
                y = _y(s)
                if s.op in ops and s.kind == kind and y is not None:
                    pts.append((y, ops.index(s.op) + (lane - (len(lanes) - 1) / 2) * step))
                    top = max(top, y)
            xs, ys = _unique(pts)
            if xs:
                ax.scatter(xs, ys, s=16, marker=marker, facecolors="none",
                           edgecolors=_style(series, j, kind), lw=0.9, rasterized=True)
    _bound_axis(ax, "x", top)
    _floor_ticks(ax, "x")
    ax.set_yticks(range(len(ops)), ops)
    ax.set_ylim(max(len(ops), 1) - 0.5, -0.5)
    for i in range(len(ops)):
        ax.axhline(i + 0.5, color="#d0d7de", lw=0.5)
    if not ops:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("error / bound (log scale; ≤ 1 passes)")
    ax.set_title("Error per op", loc="left")
    _legend(fig, series, kinds=True)
    return _svg(fig)


def bound_vs_input_svg(series: Sequence[Series]) -> str:
    """Per op (one panel each), error over bound against the largest input magnitude,
    both on log axes: where in the input range an op goes wrong (an overflow near
    |x| = 710, a cancellation near 0). Inputs equal to 0 are drawn at the left edge.

    >>> svg = bound_vs_input_svg([Series("e", [Sample("grad", op="exp", of_bound=2.0,
    ...                                                inputs=(354.0,))])])
    >>> svg.startswith("<svg") and "exp" in svg
    True
    """
    ops = sorted({s.op for se in series for s in se.samples if s.op})
    cols = min(4, max(len(ops), 1))
    rows = max(1, math.ceil(len(ops) / cols))
    fig = _figure(2.6 * cols + 0.6, 2.0 * rows + 1.0)
    mags = [m for se in series for s in se.samples if s.op and (m := s.magnitude)]
    lo = max(min(mags, default=1.0) / 10, 1e-320)
    hi = min(max(mags, default=1.0) * 10, 1e308)
    top = max([y for se in series for s in se.samples if s.op and (y := _y(s))], default=1.0)
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(ops):
            ax.set_visible(False)
            continue
        op = ops[k]
        ax.set_xscale("log")  # limits before data: autoscaling past 1e300 overflows
        ax.set_xlim(max(lo / 3, 1e-321), hi)
        for j, se in enumerate(series):
            for kind, marker in _MARKERS.items():
                pts = []
                for s in se.samples:
                    y = _y(s, j)
                    if s.op == op and s.kind == kind and y is not None:
                        m = s.magnitude
                        pts.append((m or lo, y))
                xs, ys = _unique(pts)
                if xs:
                    ax.scatter(xs, ys, s=14, marker=marker, facecolors="none",
                               edgecolors=_style(series, j, kind), lw=0.8, rasterized=True)
        _bound_axis(ax, "y", top)
        ax.set_title(op, fontsize=10, loc="left")
        ax.tick_params(labelsize=8)
        _decade_ticks(ax, lo, hi)
    for ax in axes[:, 0]:
        _floor_ticks(ax, "y")
    fig.supxlabel("largest |input| of the op (log scale; 0 at the left edge)", fontsize=10)
    fig.supylabel("error / bound", fontsize=10)
    _legend(fig, series, kinds=True)
    return _svg(fig)


def _decade_ticks(ax: Any, lo: float, hi: float) -> None:
    """At most four round decades as x ticks, and "0" at the left edge where zero inputs
    are drawn (matplotlib's own log locator overflows near the float64 limits)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    a, b = math.ceil(math.log10(lo)) + 2, math.floor(math.log10(hi))
    step = next(st for st in (1, 2, 5, 10, 20, 50, 100, 200, 500)
                if len([e for e in range(a, b + 1) if e % st == 0]) <= 4)
    exps = [e for e in range(a, b + 1) if e % step == 0]
    ax.xaxis.set_major_locator(FixedLocator([lo] + [10.0**e for e in exps]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels(["0"] + [f"1e{e}" if e else "1" for e in exps])


def bound_vs_size_svg(series: Sequence[Series]) -> str:
    """Whole-graph errors (values and gradients of random graphs) over their bound,
    against graph size.

    >>> "<svg" in bound_vs_size_svg([Series("e", [Sample("grad", of_bound=0.2, nodes=12)])])
    True
    """
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    top = 1.0
    any_ = False
    for j, se in enumerate(series):
        for kind, marker in _MARKERS.items():
            pts = []
            for s in se.samples:
                y = _y(s, j)
                if s.op is None and s.kind == kind and s.nodes and y is not None:
                    pts.append((float(s.nodes), y))
                    top = max(top, y)
            xs, ys = _unique(pts)
            if xs:
                any_ = True
                ax.scatter(xs, ys, s=16, marker=marker, facecolors="none",
                           edgecolors=_style(series, j, kind), lw=0.8, rasterized=True)
    ax.set_xscale("log")
    _bound_axis(ax, "y", top)
    _floor_ticks(ax, "y")
    if not any_:
        ax.text(0.5, 0.5, "no whole-graph samples", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("graph size (nodes, log scale)")
    ax.set_ylabel("error / bound")
    ax.set_title("Whole-graph error against graph size", loc="left")
    _legend(fig, series, kinds=True)
    return _svg(fig)


_CAPTIONS = {
    "op": "Every sampled error of each op's values and gradients as a fraction of its "
          "bound (log scale). Points right of the dashed line failed; ≤1e-6 includes "
          "exact results.",
    "input": "Where each op goes wrong: error over bound against the largest magnitude "
             "among the op's inputs (circles: gradients, triangles: values). A rise at "
             "large |x| is an overflow, at tiny |x| a cancellation or underflow. The "
             "bottom band (≤1e-6) holds exact and nearly exact results, each engine "
             "slightly above the previous one so that none hides another.",
    "size": "Errors of whole random graphs (value and gradients) against graph size; "
            "the bottom band as above.",
}


def _plots(series: Sequence[Series]) -> list[tuple[str, str]]:
    return [(bound_by_op_svg(series), _CAPTIONS["op"]),
            (bound_vs_input_svg(series), _CAPTIONS["input"]),
            (bound_vs_size_svg(series), _CAPTIONS["size"])]


def report_plots(r: Results) -> list[tuple[str, str]]:
    """The plots of one engine's report, each with its caption."""
    return _plots(series_of([r]))


def comparison_plots(results: Sequence[Results]) -> list[tuple[str, str]]:
    """The same plots with every engine side by side, one colour each."""
    return _plots(series_of(results))


def strip_ids(svg: str) -> str:
    """The SVG without its generated ids (for comparing two renderings)."""
    return re.sub(r'id="[^"]*"', "", svg)
