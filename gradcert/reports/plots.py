"""Accuracy plots as inline SVG (matplotlib, no pyplot, no global state).

matplotlib is one of gradcert's dependencies, imported only here and only when a
plot is drawn; where it cannot be imported each function raises
:class:`PlotsUnavailable` and the HTML report says so.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PlotsUnavailable", "error_vs_size_svg", "ulps_by_op_svg"]


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed."""


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
    # Stable ids and text kept as text: reports diff cleanly and stay small.
    with rc_context({"svg.hashsalt": "gradcert", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):] if "<svg" in text else text


def _log_ulps(s: Mapping[str, Any]) -> float | None:
    try:
        u = float(s["ulps"])
    except (KeyError, TypeError, ValueError):
        return None
    if math.isnan(u):
        return None
    return math.log10(1.0 + u) if math.isfinite(u) else 20.0


def ulps_by_op_svg(samples: Sequence[Mapping[str, Any]], kind: str = "grad") -> str:
    """A box plot per op of log10(1 + error in ulps), for values or gradients.

    >>> svg = ulps_by_op_svg([{"op": "mul", "kind": "grad", "ulps": 1.0}])
    >>> svg.startswith("<svg") and "mul" in svg
    True
    """
    groups: dict[str, list[float]] = {}
    for s in samples:
        if s.get("kind", "grad") != kind:
            continue
        v = _log_ulps(s)
        if v is not None:
            groups.setdefault(str(s.get("op") or "graph"), []).append(v)
    names = sorted(groups)
    fig = _figure(6.5, 0.35 * max(len(names), 3) + 1.0)
    ax = fig.add_subplot()
    if names:
        ax.boxplot([groups[n] for n in names], orientation="horizontal", tick_labels=names,
                   flierprops={"markersize": 3})
    else:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("log10(1 + error in ulps)")
    ax.set_title(f"{'Gradient' if kind == 'grad' else 'Value'} error per op")
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def error_vs_size_svg(samples: Sequence[Mapping[str, Any]]) -> str:
    """A scatter of log10(1 + gradient error in ulps) against graph size (nodes).

    >>> "<svg" in error_vs_size_svg([{"kind": "grad", "ulps": 2.0, "nodes": 12}])
    True
    """
    xs, ys = [], []
    for s in samples:
        v = _log_ulps(s)
        n = s.get("nodes")
        if v is not None and isinstance(n, (int, float)) and s.get("kind", "grad") == "grad":
            xs.append(float(n))
            ys.append(v)
    fig = _figure(6.5, 3.0)
    ax = fig.add_subplot()
    if xs:
        ax.scatter(xs, ys, s=6, alpha=0.5)
    else:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("graph size (nodes)")
    ax.set_ylabel("log10(1 + ulps)")
    ax.set_title("Gradient error against graph size")
    ax.grid(alpha=0.3)
    return _svg(fig)


def strip_ids(svg: str) -> str:
    """The SVG without its generated ids (for comparing two renderings)."""
    return re.sub(r'id="[^"]*"', "", svg)
