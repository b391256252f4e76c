"""Every setting of a certification, in one table.

Each row is one setting with its name, its ``gradcert certify`` flag, its
pytest option (``--gradcert-NAME``), its environment variable
(``GRADCERT_NAME``), its parser and its default. ``gradcert certify``
builds its flags from this table and the pytest plugin registers its
options from it; a flag or option given wins over the environment, which
wins over the default. Add a setting by adding a row.

>>> SETTINGS["seed"].option, SETTINGS["seed"].env
('--gradcert-seed', 'GRADCERT_SEED')
>>> resolve({"seed": "7"}, environ={"GRADCERT_PROFILE": "ci"})["profile"]
'ci'

Importing this module imports nothing heavy: the pytest plugin reads it in
every pytest session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PROFILES", "RANGES", "SETTINGS", "Setting", "SettingError", "from_environ", "resolve"]

# The profiles' names; their contents are in gradcert.properties.runner.PROFILES
# (tests/test_settings.py checks the two agree).
PROFILES = ("quick", "ci", "thorough")


class SettingError(ValueError):
    """A setting's value cannot be used; the message says which setting, where it came
    from and what was wrong."""


def _text(raw: str) -> str:
    return raw


def _profile(raw: str) -> str:
    if raw not in PROFILES:
        raise ValueError(f"unknown profile {raw!r}; known: {', '.join(PROFILES)}")
    return raw


def _count(what: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if n < 0:
            raise ValueError(f"{what} must be an integer, 0 or more, got {raw!r}")
        return n
    return parse


def _command(raw: str) -> tuple[str, ...] | None:
    import shlex

    if not raw.strip():
        return None
    try:
        return tuple(shlex.split(raw))
    except ValueError as e:
        raise ValueError(f"cannot split {raw!r} into words: {e}") from None


RANGES = ("full", "normal")
"""``--range``: full (every float64) or normal (inputs and exact intermediates within
1e-150..1e150 in magnitude, zero included; gradcert.properties.runner.NORMAL_RANGE)."""


def _range(raw: str) -> str:
    if raw not in RANGES:
        raise ValueError(f"unknown range {raw!r}; known: {', '.join(RANGES)}")
    return raw


def _switch(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"must be 1 or 0 (true or false), got {raw!r}")


def _seconds(raw: str) -> float:
    try:
        s = float(raw)
    except ValueError:
        s = -1.0
    if not 0 < s < float("inf"):
        raise ValueError(f"must be a positive number of seconds, got {raw!r}")
    return s


@dataclass(frozen=True)
class Setting:
    """One setting: ``flag`` is its ``gradcert certify`` flag (None: the positional
    argument of that name); ``parse`` turns the text of a flag, option or variable
    into the value, raising ``ValueError`` with the reason."""

    name: str
    flag: str | None
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str = "VALUE"  # what the help shows after the flag
    short: str | None = None  # a one-letter alias of the flag
    switch: bool = False  # a flag without a value (it sets "1"); its variable takes 1 or 0

    @property
    def option(self) -> str:
        """The pytest option: ``--gradcert-example-timeout`` for ``example_timeout``."""
        return "--gradcert-" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        """The environment variable: ``GRADCERT_EXAMPLE_TIMEOUT``."""
        return "GRADCERT_" + self.name.upper()

    @property
    def dest(self) -> str:
        """The attribute name in pytest's and argparse's option namespaces."""
        return "gradcert_" + self.name

    def value(self, raw: Any, where: str) -> Any:
        """``raw`` parsed (text) or checked (a value of the right kind already), or a
        :class:`SettingError` naming ``where`` it came from."""
        try:
            return self.parse(raw if isinstance(raw, str) else str(raw))
        except ValueError as e:
            raise SettingError(f"{where}: {e}") from None


_ROWS = [
    Setting("target", None, _text, None,
            "the engine: a built-in adapter (gradcert, micrograd, torch, jax, autograd), "
            "module:attr naming an Adapter or a Value class, or a registered name "
            "(default: gradcert's own engine)"),
    Setting("profile", "--profile", _profile, "quick",
            "quick (default), ci (derandomized: the same run every time) or thorough",
            metavar="|".join(PROFILES)),
    Setting("seed", "--seed", _count("the seed"), None,
            "hypothesis seed: reproduces a run exactly (default: a random one; none "
            "with the ci profile)", metavar="N"),
    Setting("out", "--out", _text, None,
            "report directory (certify: gradcert-report by default; in a pytest session "
            "records and reproducers are written only when it is set)", metavar="DIR"),
    Setting("jobs", "--jobs", _count("-j"), None,
            "parallel workers (pytest-xdist; default: certify uses every core, a pytest "
            "session its own -n; 0: the judge in this process, the engine still in its "
            "host)", metavar="N",
            short="-j"),
    Setting("example_timeout", "--example-timeout", _seconds, None,
            "CPU seconds the engine may take on one request of an example (default: the "
            "profile's)", metavar="S"),
    Setting("load_timeout", "--load-timeout", _seconds, None,
            "CPU seconds the engine host may take to load the target (default 120)",
            metavar="S"),
    Setting("host", "--host", _command, None,
            "a command starting an engine host that speaks docs/host-protocol.md (an "
            "engine in another language), instead of gradcert's host for the target",
            metavar="CMD"),
    Setting("strict", "--strict", _switch, False,
            "refuse the declared conventions: relu'(0) must be 0 (the op table's), and a "
            "result below the smallest normal float64 (2**-1022) must not be flushed to 0 "
            "(docs/conventions.md)", switch=True),
    Setting("range", "--range", _range, "full",
            "full (default: every float64 input) or normal: inputs and exact intermediates "
            "within 1e-150..1e150 in magnitude (zero included), a declared convention "
            "under which engines whose intermediates underflow or overflow near float64's "
            "limits can be certified (docs/conventions.md)", metavar="|".join(RANGES)),
    Setting("path", "--path", _text, None,
            "directory a module:attr target is imported from first (default: the "
            "current directory)", metavar="DIR"),
]

SETTINGS: dict[str, Setting] = {s.name: s for s in _ROWS}


def from_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings given by ``GRADCERT_*`` variables (empty ones are unset), by name.

    >>> from_environ({"GRADCERT_SEED": "3", "GRADCERT_OUT": "", "HOME": "/root"})
    {'seed': '3'}
    """
    environ = os.environ if environ is None else environ
    return {s.name: environ[s.env] for s in _ROWS if environ.get(s.env)}


def unknown_environ(environ: Mapping[str, str] | None = None) -> list[str]:
    """``GRADCERT_*`` variables that name no setting (a typo the header shows).

    >>> unknown_environ({"GRADCERT_SEDE": "3", "GRADCERT_SEED": "3"})
    ['GRADCERT_SEDE']
    """
    environ = os.environ if environ is None else environ
    known = {s.env for s in _ROWS}
    return sorted(k for k in environ if k.startswith("GRADCERT_") and k not in known)


def resolve(given: Mapping[str, Any], environ: Mapping[str, str] | None = None,
            *, style: str = "cli") -> dict[str, Any]:
    """Every setting's value: ``given`` (flags or options; None is not given), else the
    environment, else the default; parsed, or a :class:`SettingError` that names the
    flag (``style="cli"``) or option (``"pytest"``) or variable at fault.

    >>> resolve({"jobs": "2"})["jobs"], resolve({})["profile"]
    (2, 'quick')
    >>> resolve({"seed": "x"})
    Traceback (most recent call last):
    ...
    gradcert.settings.SettingError: --seed: the seed must be an integer, 0 or more, got 'x'
    """
    env = from_environ(environ)
    out: dict[str, Any] = {}
    for s in _ROWS:
        raw = given.get(s.name)
        if raw is not None:
            where = s.option if style == "pytest" else (s.flag or s.name)
            out[s.name] = s.value(raw, where)
        elif s.name in env:
            out[s.name] = s.value(env[s.name], s.env)
        else:
            out[s.name] = s.default
    return out
