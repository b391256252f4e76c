"""gradcert's pytest plugin: options, fixtures, and the record of every property.

Registered as a ``pytest11`` entry point, so every pytest session in an
environment with gradcert loads it; it stays inert there unless asked. It
registers one option per row of :mod:`gradcert.settings` (``--gradcert-target``,
``--gradcert-profile``, ..., each also read from its ``GRADCERT_*`` variable);
the pytest header echoes every setting and ``GRADCERT_*`` variable it saw.

The conformance suite runs inside a team's own pytest session with::

    python -m pytest --pyargs gradcert.properties.suite --gradcert-target=mypkg.engine:Value

(its modules are not named ``test_*.py``; the plugin collects them when the
suite's package or one of its files is named on the command line).

Fixtures: ``gradcert_config`` (the settings), ``gradcert_engine`` (the
engine under test behind its host process, started once per session, or per
xdist worker), ``gradcert_check`` (a property's context: engine, profile,
recorder) and ``gradcert_grads`` (:func:`gradcert.check_grads` for your own
functions, see ``gradcert.check.fixture``). Nothing else happens unless a
test uses them: the plugin is inert in a session that does not. The engine
never runs in the pytest process.

When an output directory is set, each test that used ``gradcert_check``
appends one JSON line to ``<out>/records/<worker>.jsonl`` as soon as it
ends, so a worker that dies later loses nothing finished.

The module imports only pytest and :mod:`gradcert.settings`; gradcert's other
modules load inside hooks and fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gradcert.settings import SETTINGS, SettingError, resolve, unknown_environ

__all__ = ["config_from"]

_SUITE_DIR = Path(__file__).resolve().parent / "properties" / "suite"
_SUITE_PACKAGE = "gradcert.properties.suite"

_RECORDER = pytest.StashKey[Any]()
_CONFIG = pytest.StashKey[Any]()
_VALUES = pytest.StashKey[dict[str, Any]]()
_ASKED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcert", "gradcert: certify an autograd engine")
    for s in SETTINGS.values():
        if s.switch:
            group.addoption(s.option, dest=s.dest, default=None, action="store_const",
                            const="1", help=f"{s.help} [env {s.env}]")
        else:
            group.addoption(s.option, dest=s.dest, default=None, metavar=s.metavar,
                            help=f"{s.help} [env {s.env}]")


def _values(config: pytest.Config) -> dict[str, Any]:
    """Every setting's value (option, else environment, else default), parsed once."""
    values = config.stash.get(_VALUES, None)
    if values is None:
        given = {s.name: config.getoption(s.dest, default=None) for s in SETTINGS.values()}
        try:
            values = config.stash[_VALUES] = resolve(given, style="pytest")
        except SettingError as e:
            raise pytest.UsageError(f"gradcert: {e}") from None
    return values


def _given(config: pytest.Config) -> bool:
    """Whether gradcert was asked for anything in this session."""
    return (any(config.getoption(s.dest, default=None) is not None for s in SETTINGS.values())
            or any(k.startswith("GRADCERT_") for k in os.environ) or _asked_for_suite(config))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``--gradcert-jobs`` / GRADCERT_JOBS is pytest-xdist's ``-n`` when that is not given."""
    if not _given(config):
        return
    jobs = _values(config)["jobs"]
    if jobs is not None and hasattr(config.option, "numprocesses") \
            and config.option.numprocesses is None:
        config.option.numprocesses = jobs


def config_from(values: dict[str, Any]) -> Any:
    """The :class:`~gradcert.properties.runner.Config` for resolved setting values.

    >>> c = config_from(resolve({"profile": "ci", "seed": "7"}))
    >>> c.profile.name, c.seed, c.target
    ('ci', 7, None)
    """
    from dataclasses import replace

    from gradcert.properties.runner import PROFILES, Config

    chosen = PROFILES[values["profile"]]
    if values.get("example_timeout") is not None:
        chosen = replace(chosen, example_cpu=values["example_timeout"])
    out = values.get("out")
    return Config(target=values.get("target"), profile=chosen, seed=values.get("seed"),
                  out=Path(out) if out else None, host=values.get("host"),
                  load_cpu=values.get("load_timeout"), strict=bool(values.get("strict")),
                  range=values.get("range") or "full")


def _config(config: pytest.Config) -> Any:
    c = config.stash.get(_CONFIG, None)
    if c is None:
        c = config.stash[_CONFIG] = config_from(_values(config))
    return c


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not _given(config):
        return None
    v = _values(config)
    c = _config(config)
    seed = c.seed if c.seed is not None else "derandomized" if c.profile.derandomize \
        else "random"
    host = f" host={' '.join(c.host)}" if c.host else ""
    lines = [f"gradcert: target={c.target or 'gradcert'}{host} profile={c.profile.name} "
             f"seed={seed} out={c.out or '-'} jobs={'-' if v['jobs'] is None else v['jobs']} "
             f"example_timeout={c.profile.example_cpu:g}s (CPU) "
             f"path={v['path'] or os.getcwd()} strict={int(c.strict)} range={c.range}"]
    seen = sorted(k for k in os.environ if k.startswith("GRADCERT_"))
    if seen:
        unknown = set(unknown_environ())
        lines.append("gradcert environment: " + " ".join(
            f"{k}={os.environ[k]}" + (" (no such setting)" if k in unknown else "")
            for k in seen))
    return lines


# -- the suite in a team's own session ------------------------------------------


def _asked_for_suite(config: pytest.Config) -> bool:
    """Whether the command line names the suite's package (``--pyargs``) or files."""
    asked = config.stash.get(_ASKED, None)
    if asked is None:
        asked = False
        for arg in config.args:
            base = str(arg).split("::", 1)[0]
            if base == _SUITE_PACKAGE or base.startswith(_SUITE_PACKAGE + "."):
                asked = True
            else:
                with contextlib.suppress(OSError, ValueError):
                    p = Path(base).resolve()
                    asked = asked or p == _SUITE_DIR or _SUITE_DIR in p.parents
        config.stash[_ASKED] = asked
    return asked


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.parent != _SUITE_DIR or file_path.suffix != ".py" \
            or file_path.name == "__init__.py":
        return None
    config = parent.config
    if not _asked_for_suite(config) or parent.session.isinitpath(file_path):
        return None  # not asked for; or named itself, and then pytest collects it
    import fnmatch

    if any(fnmatch.fnmatch(file_path.name, pat) for pat in config.getini("python_files")):
        return None  # pytest's own collector takes it
    return pytest.Module.from_parent(parent, path=file_path)


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="session")
def gradcert_config(pytestconfig: pytest.Config) -> Any:
    """The session's gradcert settings (target, profile, seed, out)."""
    return _config(pytestconfig)


@pytest.fixture(scope="session")
def gradcert_engine(pytestconfig: pytest.Config, gradcert_config: Any) -> Iterator[Any]:
    """The engine under test, behind a host process of its own (see
    :mod:`gradcert.properties.engine`), started once per session.

    A ``module:attr`` target imports there from ``--gradcert-path`` (default:
    the current directory), searched first once gradcert is imported, so a
    checkout of gradcert there cannot shadow the running one.
    """
    from gradcert.properties.engine import LoadError, start_engine

    c = gradcert_config
    path = str(Path(_values(pytestconfig)["path"] or os.getcwd()).resolve())
    try:
        engine = start_engine(c.target, command=c.host, cpu=c.profile.example_cpu,
                              known=c.out / "engine.json" if c.out is not None else None,
                              path=path, load_cpu=c.load_cpu)
    except LoadError as e:
        pytest.fail(f"gradcert: cannot use target {c.target or 'gradcert'!r}: {e}",
                    pytrace=False)
    yield engine
    engine.close()


@pytest.fixture
def gradcert_check(request: pytest.FixtureRequest, gradcert_config: Any,
                   gradcert_engine: Any) -> Iterator[Any]:
    """A property's context: the engine, the profile, and this test's recorder."""
    from gradcert.properties.recording import Recorder
    from gradcert.properties.runner import Check, property_id

    pid = property_id(str(request.node.path), request.node.name)
    callspec = getattr(request.node, "callspec", None)
    item = "-".join(str(v) for v in callspec.params.values()) if callspec else None
    recorder = Recorder(pid, item)
    request.node.stash[_RECORDER] = recorder
    from gradcert.properties.determinism import source_constants_off

    with source_constants_off():
        yield Check(gradcert_config, gradcert_engine, recorder, pid, item)


@pytest.fixture(scope="session")
def gradcert_grads(pytestconfig: pytest.Config) -> Any:
    """check_grads for your own functions, failing the test with its message."""
    from gradcert.check.fixture import grads_for

    return grads_for(pytestconfig.rootpath, _values(pytestconfig)["out"])


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


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The controller starts the session's check records afresh (before any worker)."""
    out = _values(session.config)["out"]
    if out and not os.environ.get("PYTEST_XDIST_WORKER"):
        import shutil

        shutil.rmtree(Path(out) / "checks", ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller reports the session's checks of functions, if any. A worker's
    session is over: execnet interrupts (SIGINT) a worker that takes more than 5 s
    to shut down, as one may on a loaded machine; let that end it quietly rather
    than print a KeyboardInterrupt traceback under the verdict."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        if _given(session.config):
            import signal

            with contextlib.suppress(ValueError):  # not the main thread: leave it
                signal.signal(signal.SIGINT, signal.SIG_DFL)
        return
    out = _values(session.config)["out"]
    if out and (Path(out) / "checks").is_dir():
        written = write_check_reports(Path(out))
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if written is not None and reporter is not None:
            reporter.write_line(f"gradcert: check_grads {written.verdict.upper()}: "
                                f"{len(written.properties)} functions; reports in {out}: "
                                f"checks.md, checks.html, checks.junit.xml, checks.json")


def write_check_reports(out: Path) -> Any:
    """``checks.json``, ``checks.md``, ``checks.html`` and ``checks.junit.xml`` in ``out``
    from the check records under ``out/checks``; the :class:`~gradcert.results.Results`,
    or None when there are no records. A report that cannot be made is a warning."""
    from gradcert import reports
    from gradcert.results import Results, merge_records, read_records

    records = read_records(sorted((out / "checks").glob("*.jsonl")))
    if not records:
        return None
    results = Results("check_grads", merge_records(records), kind="check_grads",
                      profile="-", duration_s=sum(float(r.get("duration_s") or 0.0)
                                                  for r in records))
    tmp = results.write(out / ".checks.json.tmp")
    tmp.replace(out / "checks.json")
    for name, render in (("checks.md", reports.to_markdown), ("checks.html", reports.to_html),
                         ("checks.junit.xml", reports.to_junit)):
        try:
            (out / name).write_text(render(results), encoding="utf-8")
        except Exception as e:  # never lose the session's own outcome to a report
            import warnings

            warnings.warn(f"gradcert: no {name} ({type(e).__name__}: {e})", stacklevel=1)
    return results


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]
