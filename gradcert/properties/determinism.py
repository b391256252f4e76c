"""What makes a derandomized run draw the same examples in every process.

Hypothesis draws, now and then, literals it found in the source of the
modules loaded so far, so what it generates depends on what the process
imported before (a worker's history under xdist, an editable install, the
tests that ran first): the same derandomized run checked other graphs each
time. :func:`source_constants_off` empties that pool while a property runs:
a property draws only from its strategies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["source_constants_off"]


@contextlib.contextmanager
def source_constants_off() -> Iterator[None]:
    """Hypothesis's pool of source literals emptied (and its cache cleared) inside."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a hypothesis without the mechanism
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if original is None or not hasattr(providers, "Constants"):  # pragma: no cover
        yield
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    if cache is not None:
        cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        if cache is not None:
            cache.clear()
