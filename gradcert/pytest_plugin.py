"""gradcert's pytest plugin: options, fixtures, and the record of every property.

``gradcert certify`` runs the conformance suite with it; a team can use it
directly::

    pytest -p gradcert.pytest_plugin --gradcert-target=mypkg.engine:Value ...

Options (each also read from an environment variable, and echoed in the
pytest header when set):

=======================  ==================  ===================================
option                   environment         meaning
=======================  ==================  ===================================
``--gradcert-target``    GRADCERT_TARGET     adapter name or ``module:attr``
``--gradcert-profile``   GRADCERT_PROFILE    quick (default), ci or thorough
``--gradcert-seed``      GRADCERT_SEED       hypothesis seed (an integer)
``--gradcert-out``       GRADCERT_OUT        directory for records and reproducers
``--gradcert-example-    GRADCERT_EXAMPLE_   CPU seconds the engine may take on one
timeout``                TIMEOUT             request of an example (default: the
                                             profile's)
``--gradcert-host``      GRADCERT_HOST       a command starting an engine host that
                                             speaks docs/host-protocol.md, instead
                                             of gradcert's host for the target
``--gradcert-load-       GRADCERT_LOAD_      CPU seconds the host may take to load
timeout``                TIMEOUT             the target (default 120)
=======================  ==================  ===================================

Fixtures: ``gradcert_config`` (the settings), ``gradcert_engine`` (the
engine under test behind its host process, started once per session, or per
xdist worker) and ``gradcert_check`` (a property's context: engine, profile,
recorder). Nothing else happens unless a test uses them: the plugin is inert
in a session that does not. The engine never runs in the pytest process.

When an output directory is set, each test that used ``gradcert_check``
appends one JSON line to ``<out>/records/<worker>.jsonl`` as soon as it
ends, so a worker that dies later loses nothing finished.

The module imports only pytest; gradcert's own modules load inside hooks.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

__all__ = ["OPTIONS", "config_from", "cpu_seconds", "host_command"]

OPTIONS = {  # option dest -> (flag, environment variable, help)
    "gradcert_target": ("--gradcert-target", "GRADCERT_TARGET",
                        "engine to certify: an adapter name or module:attr (default: gradcert's)"),
    "gradcert_profile": ("--gradcert-profile", "GRADCERT_PROFILE",
                         "quick (default), ci (derandomized) or thorough"),
    "gradcert_seed": ("--gradcert-seed", "GRADCERT_SEED", "hypothesis seed (an integer)"),
    "gradcert_out": ("--gradcert-out", "GRADCERT_OUT",
                     "directory for per-test records and reproducers"),
    "gradcert_example_timeout": ("--gradcert-example-timeout", "GRADCERT_EXAMPLE_TIMEOUT",
                                 "CPU seconds the engine may take on one request of an example "
                                 "(default: the profile's)"),
    # the engine host's settings (rows for a settings table)
    "gradcert_host": ("--gradcert-host", "GRADCERT_HOST",
                      "a command starting an engine host that speaks the host protocol "
                      "(docs/host-protocol.md), instead of gradcert's host for the target"),
    "gradcert_load_timeout": ("--gradcert-load-timeout", "GRADCERT_LOAD_TIMEOUT",
                              "CPU seconds the engine host may take to load the target "
                              "(default 120)"),
}

_RECORDER = pytest.StashKey[Any]()
_CONFIG = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcert", "gradcert: certify an autograd engine")
    for dest, (flag, env, text) in OPTIONS.items():
        group.addoption(flag, dest=dest, default=None, help=f"{text} [env {env}]")


def _raw(config: pytest.Config) -> dict[str, str | None]:
    out = {}
    for dest, (_flag, env, _help) in OPTIONS.items():
        v = config.getoption(dest, default=None)
        out[dest] = v if v is not None else os.environ.get(env) or None
    return out


def config_from(options: dict[str, str | None]) -> Any:
    """The :class:`~gradcert.properties.runner.Config` for raw option values; a clear
    ``pytest.UsageError`` for a bad profile or seed.

    >>> c = config_from({"gradcert_profile": "ci", "gradcert_seed": "7"})
    >>> c.profile.name, c.seed, c.target
    ('ci', 7, None)
    """
    from dataclasses import replace
    from pathlib import Path

    from gradcert.properties.runner import PROFILES, Config

    profile = options.get("gradcert_profile") or "quick"
    if profile not in PROFILES:
        raise pytest.UsageError(f"gradcert: unknown profile {profile!r} "
                                f"(--gradcert-profile / GRADCERT_PROFILE); "
                                f"known: {', '.join(PROFILES)}")
    seed = options.get("gradcert_seed")
    try:
        seed_n = None if seed in (None, "") else int(str(seed))
    except ValueError:
        raise pytest.UsageError(f"gradcert: the seed must be an integer, got {seed!r} "
                                f"(--gradcert-seed / GRADCERT_SEED)") from None
    out = options.get("gradcert_out")
    chosen = PROFILES[profile]
    seconds = cpu_seconds(options.get("gradcert_example_timeout"), "example timeout")
    if seconds is not None:
        chosen = replace(chosen, example_cpu=seconds)
    return Config(target=options.get("gradcert_target") or None, profile=chosen,
                  seed=seed_n, out=Path(out) if out else None,
                  host=host_command(options.get("gradcert_host")),
                  load_cpu=cpu_seconds(options.get("gradcert_load_timeout"), "load timeout"))


def cpu_seconds(text: str | None, what: str) -> float | None:
    """A positive number of CPU seconds from an option or variable (None if unset).

    >>> cpu_seconds("2.5", "example timeout"), cpu_seconds(None, "example timeout")
    (2.5, None)
    """
    if text in (None, ""):
        return None
    try:
        seconds = float(str(text))
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        flag = what.replace(" ", "-")
        raise pytest.UsageError(f"gradcert: the {what} must be a positive number of seconds, "
                                f"got {text!r} (--gradcert-{flag} / "
                                f"GRADCERT_{flag.upper().replace('-', '_')})")
    return seconds


def host_command(text: str | None) -> tuple[str, ...] | None:
    """The argv of ``--gradcert-host`` / ``GRADCERT_HOST`` (shell words); a clear
    ``pytest.UsageError`` for one that cannot be split.

    >>> host_command("python my_host.py --fast")
    ('python', 'my_host.py', '--fast')
    """
    import shlex

    if text is None or not text.strip():
        return None
    try:
        return tuple(shlex.split(text))
    except ValueError as e:
        raise pytest.UsageError(f"gradcert: the host command {text!r} cannot be split into "
                                f"words: {e} (--gradcert-host / GRADCERT_HOST)") from None


def _config(config: pytest.Config) -> Any:
    c = config.stash.get(_CONFIG, None)
    if c is None:
        c = config.stash[_CONFIG] = config_from(_raw(config))
    return c


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    raw = _raw(config)
    if not any(raw.values()):
        return None
    c = _config(config)
    seed = "derandomized" if c.profile.derandomize else (c.seed if c.seed is not None
                                                         else "random")
    host = f" host={' '.join(c.host)}" if c.host else ""
    return [f"gradcert: target={c.target or 'gradcert'}{host} profile={c.profile.name} "
            f"seed={seed} out={c.out or '-'}"]


@pytest.fixture(scope="session")
def gradcert_config(pytestconfig: pytest.Config) -> Any:
    """The session's gradcert settings (target, profile, seed, out)."""
    return _config(pytestconfig)


@pytest.fixture(scope="session")
def gradcert_engine(gradcert_config: Any) -> Any:
    """The engine under test, behind a host process of its own (see
    :mod:`gradcert.properties.engine`), started once per session."""
    from gradcert.properties.engine import LoadError, start_engine

    c = gradcert_config
    try:
        engine = start_engine(c.target, command=c.host, cpu=c.profile.example_cpu,
                              known=c.out / "engine.json" if c.out is not None else None,
                              load_cpu=c.load_cpu)
    except LoadError as e:
        pytest.fail(f"gradcert: cannot use target {c.target or 'gradcert'!r}: {e}",
                    pytrace=False)
    yield engine
    engine.close()


@pytest.fixture
def gradcert_check(request: pytest.FixtureRequest, gradcert_config: Any,
                   gradcert_engine: Any) -> Any:
    """A property's context: the engine, the profile, and this test's recorder."""
    from gradcert.properties.recording import Recorder
    from gradcert.properties.runner import Check, property_id

    pid = property_id(str(request.node.path), request.node.name)
    callspec = getattr(request.node, "callspec", None)
    item = "-".join(str(v) for v in callspec.params.values()) if callspec else None
    recorder = Recorder(pid, item)
    request.node.stash[_RECORDER] = recorder
    return Check(gradcert_config, gradcert_engine, recorder, pid, item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    recorder = item.stash.get(_RECORDER, None)
    if recorder is None:
        return
    report = outcome.get_result()
    final = report.when == "call" or (report.when == "setup" and not report.passed)
    if not final:
        return
    rec = recorder.record()
    rec["nodeid"] = item.nodeid
    rec["duration_s"] = report.duration
    if rec["outcome"] is None:
        if report.passed:
            rec["outcome"] = "passed"
        elif report.skipped:
            rec["outcome"] = "unsupported"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            rec["notes"] = {**rec["notes"], "unsupported": str(reason).removeprefix("Skipped: ")}
        else:
            text = str(report.longrepr)
            rec["outcome"] = "timeout" if "Timeout" in text[:2000] else "error"
            rec["failure"] = {"message": _tail(text)}
    c = _config(item.config)
    if c.out is not None:
        from gradcert.results import jsonable

        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        path = c.out / "records" / f"{worker}-{os.getpid()}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(jsonable(rec), allow_nan=False) + "\n")


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]
