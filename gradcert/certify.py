"""``gradcert certify``: run the conformance suite on an engine and give a verdict.

The suite (``gradcert/properties/suite``) runs as one pytest session with
its own clean configuration (the user's pytest.ini, addopts and
auto-loaded plugins do not leak in), across ``jobs`` pytest-xdist workers,
so a worker that dies is reported as a crash of the property it was
running and certification goes on. Each worker appends a JSON line per
finished test under ``<out>/records``; afterwards they are merged into
``<out>/results.json`` (with ``report.md`` and ``report.html`` made from it)
beside pytest's ``<out>/junit.xml`` and a reproducer per failed property
under ``<out>/reproducers``.

>>> EXIT_CERTIFIED, EXIT_FAILED, EXIT_USAGE
(0, 1, 2)
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
import shlex
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gradcert.results import (
    Results,
    conventions,
    conventions_text,
    merge_records,
    ops_summary,
    read_records,
)

__all__ = ["EXIT_CERTIFIED", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "CertifyError",
           "Interrupted", "certify", "pytest_args"]

EXIT_CERTIFIED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_SAMPLES = 5000  # in results.json, across all properties


class CertifyError(Exception):
    """Bad usage, a target that cannot be imported or adapted, or a selection that
    matches no property (exit code 2)."""


class Interrupted(CertifyError):
    """The session was interrupted (Ctrl-C) before a verdict (exit code 130)."""


def _optional_hook(f: Any) -> Any:
    """Mark ``f`` as a hook of a plugin that may be absent (xdist's, under -j 0)."""
    import pytest

    return pytest.hookimpl(optionalhook=True)(f)


@dataclass(eq=False)
class _Collector:
    """Sees every test report in the controlling process, including a crashed worker's,
    and which tests the session was to run."""

    reports: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)

    def pytest_collection_finish(self, session: Any) -> None:
        self._saw([item.nodeid for item in session.items])

    @_optional_hook
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        self._saw(ids)

    def _saw(self, ids: Sequence[str]) -> None:
        known = set(self.collected)
        self.collected += [i for i in ids if i not in known]

    def pytest_runtest_logreport(self, report: Any) -> None:
        # the call, a setup that did not pass, any failure (a crash reports as "???")
        final = report.when == "call" or not report.passed
        if final and (report.nodeid not in self.reports or report.failed):
            self.reports[report.nodeid] = report

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(str(report.longrepr))


class _Progress:
    """Progress over the suite's tests, fed by the controller's reports: a bar (rich) on
    a terminal; in a log without a TTY (CI), a line per finished property with its
    outcome, so a long run is never silent.

    It replaces pytest's own progress dots; the verdict table follows it.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Any = None
        if stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(TextColumn("{task.description:<34}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("{task.fields[failed]}"),
                                TimeElapsedColumn(), console=Console(file=stream))
            self.task = self.bar.add_task("collecting the suite", total=None, failed="")
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.skipped: set[str] = set()
        self.left: dict[str, int] = {}  # property id -> its tests not yet finished
        self.outcome: dict[str, str] = {}
        self.finished = 0
        self.t0 = time.perf_counter()

    def live(self) -> Any:
        """The context the session runs in: the bar's live display, or nothing."""
        return self.bar if self.bar is not None else contextlib.nullcontext()

    def _collected(self, nodeids: Sequence[str]) -> None:
        from gradcert.properties.runner import property_id

        if self.left:
            return  # every xdist worker collects the same tests
        for nodeid in nodeids:
            path, _, name = nodeid.partition("::")
            pid = property_id(path, name)
            self.left[pid] = self.left.get(pid, 0) + 1
        if self.bar is not None:
            self.bar.update(self.task, total=len(nodeids))

    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        self._collected(ids)

    def pytest_collection_finish(self, session: Any) -> None:
        if session.items:
            self._collected([item.nodeid for item in session.items])

    def pytest_runtest_logreport(self, report: Any) -> None:
        from gradcert.properties.runner import property_id

        if report.failed:
            self.failed.add(report.nodeid)
        if report.skipped:
            self.skipped.add(report.nodeid)
        if report.when in ("setup", "call") and not report.failed:
            return  # a test is done at its teardown, or when it fails (a crash has no teardown)
        if report.nodeid in self.done:
            return
        self.done.add(report.nodeid)
        path, _, name = report.nodeid.partition("::")
        pid = property_id(path, name)
        bad = len(self.failed)
        if self.bar is not None:
            self.bar.update(self.task, completed=len(self.done), description=pid,
                            failed=f"{bad} not passed" if bad else "")
            return
        test = "failed" if report.nodeid in self.failed else (
            "unsupported" if report.nodeid in self.skipped else "passed")
        rank = ("unsupported", "passed", "failed")
        self.outcome[pid] = max(self.outcome.get(pid, "unsupported"), test, key=rank.index)
        self.left[pid] = self.left.get(pid, 1) - 1
        if self.left[pid] <= 0:
            self.finished += 1
            print(f"[{self.finished}/{len(self.left)}] {pid}: {self.outcome[pid]} "
                  f"({time.perf_counter() - self.t0:.0f} s elapsed)",
                  file=self.stream, flush=True)


def pytest_args(target: str | None, profile: str, seed: int | None, out: Path,
                jobs: int, select: str | None = None, files: Sequence[Path] | None = None,
                *, example_timeout: float | None = None, path: str | None = None,
                host: Sequence[str] | None = None, load_timeout: float | None = None,
                strict: bool = False, range: str = "full") -> list[str]:
    """The pytest command line ``certify`` runs (also useful to run the suite by hand).

    >>> args = pytest_args("micrograd", "quick", 3, Path("rep"), 2)
    >>> args[args.index("-n") + 1], "--gradcert-target=micrograd" in args
    ('2', True)
    """
    from gradcert.properties.runner import PROFILES
    from gradcert.properties.suite import LEVEL_FILES, SUITE_DIR

    args = [str(f) for f in (files or LEVEL_FILES)]
    args += ["-c", str(out / ".pytest.ini"), "--rootdir", str(SUITE_DIR), "--noconftest",
             # python_files=*.py would make pytest rewrite the asserts of every module the
             # engine imports (torch.optim pulls in torch._dynamo): the suite reports its own
             # findings, so plain asserts do
             "-p", "no:cacheprovider", "-o", "python_files=*.py", "--assert=plain",
             "-o", "python_functions=test_*", "-o", "python_classes=",
             "-o", "console_output_style=progress", "--tb=no", "-rN",
             "-p", "no:warnings", "-p", "no:doctest", "-p", "pytest_timeout",
             "--timeout", str(PROFILES[profile].test_timeout),
             "--junitxml", str(out / "junit.xml"), "-o", "junit_suite_name=gradcert",
             "-p", "gradcert.pytest_plugin", f"--gradcert-profile={profile}",
             f"--gradcert-out={out}"]
    if target:
        args.append(f"--gradcert-target={target}")
    if host:
        args.append(f"--gradcert-host={shlex.join(host)}")
    if seed is not None:
        args.append(f"--gradcert-seed={seed}")
    if example_timeout is not None:
        args.append(f"--gradcert-example-timeout={example_timeout}")
    if load_timeout is not None:
        args.append(f"--gradcert-load-timeout={load_timeout}")
    if path is not None:
        args.append(f"--gradcert-path={path}")
    if strict:
        args.append("--gradcert-strict")
    if range != "full":
        args.append(f"--gradcert-range={range}")
    if jobs > 0:
        args += ["-p", "xdist.plugin", "-n", str(jobs)]
    else:
        args += ["-p", "no:xdist"]
    if select:
        args += ["-k", select]
    return args


@contextlib.contextmanager
def _session_environment(cwd: str, *, where: str | None = None, workdir: Path | None = None
                         ) -> Iterator[None]:
    """No PYTEST_ADDOPTS, auto-loaded plugins or GRADCERT_* variables from the user's
    environment (the settings travel as options); and either ``where`` importable
    (to load a ``module:attr`` target here) or the session run from ``workdir``.

    pytest-xdist gives its workers this process's ``sys.path``, or their working
    directory first on it; either way a checkout of gradcert in the current
    directory would shadow the installed gradcert there. So the session runs
    from the report directory with ``sys.path`` as it was, and the workers
    import the target from ``where`` (``--gradcert-path``) once gradcert is loaded.
    """
    saved = dict(os.environ)
    saved_path = list(sys.path)
    for k in [k for k in os.environ if k.startswith(("GRADCERT_", "PYTEST_"))]:
        del os.environ[k]
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if where is not None and where not in sys.path:
        sys.path.insert(0, where)
    try:
        if workdir is not None:
            os.chdir(workdir)
        yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
        sys.path[:] = saved_path


def certify(target: str | None = None, *, profile: str = "quick", seed: int | None = None,
            out: str | Path = "gradcert-report", jobs: int | None = None,
            select: str | None = None, stream: TextIO | None = None,
            quiet: bool = False, progress: bool = True,
            example_timeout: float | None = None, path: str | Path | None = None,
            host: Sequence[str] | None = None, load_timeout: float | None = None,
            strict: bool = False, range: str = "full") -> Results:
    """Certify ``target`` (None: gradcert's engine) and write the report to ``out``.

    The engine runs in engine host processes, never in this one or in the
    workers; ``host``: the command of a host that speaks for an engine itself
    (docs/host-protocol.md), instead of gradcert's host for ``target``.
    ``jobs``: pytest-xdist workers (default: the number of cores; 0 runs the
    judge in this process). ``select``: a pytest ``-k`` expression.
    ``progress``: a progress bar (or, without a TTY, a line per finished property)
    instead of pytest's own output (with workers).
    ``example_timeout``: CPU seconds one request of an example may take on the
    engine (default: the profile's); ``load_timeout``: CPU seconds to load the
    target. ``path``: the directory a ``module:attr`` target imports from
    (default: the current directory). ``strict``: refuse the kink and flush
    conventions; ``range``: "full" or "normal" (docs/conventions.md).
    Raises :class:`CertifyError` for bad usage, an unusable target, a selection
    that matches no property, or a session that did not run to its end.
    """
    import pytest

    from gradcert.properties.registry import PROPERTIES
    from gradcert.properties.runner import PROFILES
    from gradcert.settings import SettingError, resolve

    try:  # the arguments, checked by the settings table's parsers
        values = resolve({"profile": profile, "seed": seed, "jobs": jobs,
                          "example_timeout": example_timeout, "path": path,
                          "load_timeout": load_timeout, "strict": "1" if strict else None,
                          "range": range,
                          "host": shlex.join(host) if host else None}, environ={})
    except SettingError as e:
        raise CertifyError(str(e)) from None
    jobs = values["jobs"] if values["jobs"] is not None else os.cpu_count() or 1
    cwd = os.getcwd()
    where = str(Path(path).resolve()) if path is not None else cwd
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("records", "reproducers"):
        shutil.rmtree(out / stale, ignore_errors=True)
    for stale_file in ("engine.json", "junit.xml", "results.json", "report.md", "report.html"):
        (out / stale_file).unlink(missing_ok=True)  # a run that dies leaves no old verdict
    with _session_environment(cwd, where=where):
        engine = _load_engine(target, host, out / "engine.json", where,
                              values["load_timeout"])  # in a host, limited
    if seed is None and not PROFILES[profile].derandomize:
        seed = random.SystemRandom().randrange(2**32)
    (out / ".pytest.ini").write_text("[pytest]\n")
    args = pytest_args(target, profile, seed, out, jobs, select,
                       example_timeout=values["example_timeout"], path=where, host=host,
                       load_timeout=values["load_timeout"], strict=values["strict"],
                       range=values["range"])
    collector = _Collector()
    plugins: list[Any] = [collector]
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.perf_counter()
    stream = stream or sys.stdout
    bar = _Progress(stream) if progress and jobs > 0 and not quiet else None
    if bar is not None:
        # pytest's terminal reporter (and its --tb/-r options) gives way to the bar
        args = [a for a in args if a not in ("--tb=no", "-rN")] + ["-p", "no:terminal"]
        plugins.append(bar)
        print(f"gradcert certify {target or (shlex.join(host) if host else 'gradcert')}: "
              f"profile {profile}, "
              f"{'derandomized' if seed is None else f'seed {seed}'}, {jobs} worker(s), "
              f"{conventions_text(values['strict'], values['range'])}, "
              f"out {out}", file=stream)
    with _session_environment(cwd, workdir=out), contextlib.redirect_stdout(stream), \
            (bar.live() if bar is not None else contextlib.nullcontext()):
        if quiet:
            args = args + ["-qq", "--no-header"]
        code = int(pytest.main(args, plugins=plugins))
    duration = time.perf_counter() - t0
    _check_session(code, collector, select)
    records = read_records(sorted((out / "records").glob("*.jsonl"))) \
        if (out / "records").is_dir() else []
    records += _missing(records, collector, select)
    # in the suite's order, not the order workers happened to finish in: which item's
    # failure a property shows must not depend on the machine's load
    place = {nodeid: i for i, nodeid in enumerate(collector.collected)}
    records.sort(key=lambda r: (place.get(str(r.get("nodeid")), len(place)), str(r.get("nodeid"))))
    _write_junit_not_run(out / "junit.xml", records)
    order = list(PROPERTIES)
    props = merge_records(records, {p: PROPERTIES[p].meaning for p in PROPERTIES})
    props.sort(key=lambda p: (order.index(p.id) if p.id in order else len(order), p.id))
    samples = [s for r in records for s in (r.get("samples") or [])]
    if len(samples) > MAX_SAMPLES:
        samples = samples[:: len(samples) // MAX_SAMPLES + 1]
    name = target or (f"host: {shlex.join(host)}" if host else "gradcert")
    results = Results(
        target=name, properties=props, profile=profile, seed=seed,
        started=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration_s=round(duration, 3), ops=ops_summary(samples), samples=samples,
        engine=_engine(out, engine),
        conventions=conventions(values["strict"], values["range"]),
    )
    tmp = results.write(out / ".results.json.tmp")  # whole or not at all
    tmp.replace(out / "results.json")
    _junit_matches_verdict(out / "junit.xml", records)
    _write_reports(results, out)
    if code == 2:  # written all the same, what did not run marked so
        raise Interrupted(f"interrupted before the suite finished: no verdict (what ran is "
                          f"in {out / 'results.json'})")
    return results


def _check_session(code: int, collector: _Collector, select: str | None) -> None:
    """A :class:`CertifyError` unless the pytest session ran every selected test to its
    end (pytest's exit codes: 0 passed, 1 some failed, 2 interrupted, 3 internal
    error, 4 usage error, 5 nothing collected); an interrupted session (2) goes on
    to write what it has."""
    if code == 5:
        raise CertifyError(f"-k {select!r} selects no property" if select
                           else "the suite collected no test")
    if code in (3, 4):
        why = "; ".join(collector.errors)[:2000] or "see the pytest output above"
        raise CertifyError(f"the pytest session could not run (pytest exit code {code}): "
                           + why)
    if collector.errors:
        raise CertifyError("the suite could not be collected: " + collector.errors[0][:2000])
    if code not in (0, 1, 2):
        raise CertifyError(f"the pytest session ended with exit code {code}")


# junit.xml's word for each outcome of the verdict table (passed: no element)
_JUNIT = {"failed": "failure", "error": "error", "crashed": "error", "timeout": "error",
          "unsupported": "skipped", "not run": "error"}


def _junit_case(nodeid: str) -> tuple[str, str]:
    """The (classname, name) pytest's junit.xml gives the test ``nodeid``.

    >>> _junit_case("ops.py::test_values[a::b]")
    ('ops', 'test_values[a::b]')
    """
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = names[0].replace("/", ".").removesuffix(".py")
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def _junit_matches_verdict(path: Path, records: list[dict[str, Any]]) -> None:
    """Rewrite junit.xml so each test's element says what the verdict table says: an
    engine that raised, crashed or timed out is an ``<error>``, a failed property a
    ``<failure>``, an unsupported one ``<skipped>``."""
    import xml.etree.ElementTree as ET

    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return
    outcomes = {_junit_case(str(r["nodeid"])): str(r.get("outcome")) for r in records
                if r.get("nodeid")}
    suites = [tree.getroot()] if tree.getroot().tag == "testsuite" \
        else tree.getroot().findall("testsuite")
    for suite in suites:
        for case in suite.findall("testcase"):
            outcome = outcomes.get((case.get("classname", ""), case.get("name", "")))
            if outcome is None:
                continue
            want = _JUNIT.get(outcome)
            old = [e for e in case if e.tag in ("failure", "error", "skipped")]
            if want is None and not old or old and old[0].tag == want:
                continue
            text = "\n".join((e.text or "") for e in old)
            message = next((e.get("message", "") for e in old), "")
            for e in old:
                case.remove(e)
            if want is not None:
                el = ET.SubElement(case, want, message=f"{outcome}: {message}"[:500])
                el.text = text
        for kind, attr in (("failure", "failures"), ("error", "errors"),
                           ("skipped", "skipped")):
            suite.set(attr, str(len(suite.findall(f"testcase/{kind}"))))
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _write_reports(results: Results, out: Path) -> None:
    """``report.md`` and ``report.html`` beside results.json; a report that cannot be made
    is a warning, never a lost certification."""
    try:
        from gradcert import reports

        (out / "report.md").write_text(reports.to_markdown(results), encoding="utf-8")
        (out / "report.html").write_text(reports.to_html(results), encoding="utf-8")
    except Exception as e:
        print(f"gradcert certify: no report.md/report.html ({type(e).__name__}: {e})",
              file=sys.stderr)


def _load_engine(target: str | None, host: Sequence[str] | None, known: Path, path: str,
                 load_timeout: float | None) -> dict[str, Any]:
    """Load the target in an engine host (never in this process) and probe it once, for
    every worker: ``engine.json``. :class:`CertifyError` (exit 2) if it cannot be loaded
    within ``load_timeout`` CPU seconds (default: the host client's)."""
    from gradcert.properties.engine import LoadError, describe, start_engine

    try:
        engine = start_engine(target, command=host, known=known, path=path,
                              load_cpu=load_timeout)
    except LoadError as e:
        raise CertifyError(str(e)) from None
    except Exception as e:  # probing it failed past what can be skipped: the host's message
        raise CertifyError(f"the engine could not be probed: {e}") from None
    try:
        return describe(engine.info, engine.caps)
    finally:
        engine.close()


def _engine(out: Path, found: dict[str, Any]) -> dict[str, Any]:
    try:
        return dict(json.loads((out / "engine.json").read_text()))
    except (OSError, ValueError):
        return found


def _missing(records: list[dict[str, Any]], collector: _Collector,
             select: str | None) -> list[dict[str, Any]]:
    """Records for every test the session was to run that wrote none: ``crashed`` (its
    worker died), ``error`` or ``timeout`` (the judge failed), and ``not run`` for the
    ones never reported (the session was interrupted, or xdist gave up on crashing
    workers). Without a selection, every property of the registry gets an outcome."""
    from gradcert.properties.registry import PROPERTIES
    from gradcert.properties.runner import property_id

    done = {r.get("nodeid") for r in records}
    out = []
    for nodeid, rep in collector.reports.items():
        if nodeid in done:
            continue
        text = str(rep.longrepr or "")
        outcome = "passed" if rep.passed else "unsupported" if rep.skipped else (
            "crashed" if "crashed" in text[:500] else
            "timeout" if "Timeout" in text[:2000] else "error")
        failure = None
        if outcome == "crashed":
            failure = {"message": "the worker process running this test died (gradcert's "
                                  "judge, not the engine, which runs in a host of its own)"
                                  "\n" + text[-3000:]}
        elif outcome in ("error", "timeout"):
            failure = {"message": text[-3000:]}
        out.append(_record(nodeid, outcome, failure, getattr(rep, "duration", 0.0)))
    reported = done | set(collector.reports)
    for nodeid in collector.collected:
        if nodeid not in reported:
            out.append(_record(nodeid, "not run", {
                "message": "not run: the session ended before this test ran (interrupted, "
                           "or the workers kept dying)"}, 0.0))
    if select is None:
        have = {r["id"] for r in records + out}
        for pid in PROPERTIES:
            if pid not in have:
                level, name = pid.split(".", 1)
                out.append(_record(f"{level}.py::test_{name}", "not run", {
                    "message": "not run: the suite never got to this property"}, 0.0))
    for r in out:
        r["id"] = property_id(*r["nodeid"].partition("::")[::2])
    return out


def _record(nodeid: str, outcome: str, failure: dict[str, Any] | None,
            duration: float) -> dict[str, Any]:
    name = nodeid.partition("::")[2]
    item = name.split("[", 1)[1].rstrip("]") if "[" in name else None
    return {"id": "", "item": item, "nodeid": nodeid, "outcome": outcome, "failure": failure,
            "graphs_checked": 0, "duration_s": duration}


def _write_junit_not_run(path: Path, records: list[dict[str, Any]]) -> None:
    """Add to pytest's junit.xml (or write one) a test case for every test that has no
    report there: not run, or lost with a crashed worker. Each is an error, so CI sees
    it."""
    import xml.etree.ElementTree as ET

    missing = [r for r in records if r["outcome"] in ("not run", "crashed")]
    try:
        tree = ET.parse(path)
        root = tree.getroot()
    except (OSError, ET.ParseError):
        root = ET.Element("testsuites")
        ET.SubElement(root, "testsuite", name="gradcert")
        tree = ET.ElementTree(root)
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        suite = ET.SubElement(root, "testsuite", name="gradcert")
    present = {(c.get("classname"), c.get("name")) for c in suite.iter("testcase")}
    added = 0
    for r in missing:
        path_, _, name = r["nodeid"].partition("::")
        classname = path_.removesuffix(".py").replace("/", ".")
        if (classname, name) in present:
            continue
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")
        message = (r.get("failure") or {}).get("message", r["outcome"])
        ET.SubElement(case, "error", type=r["outcome"], message=message[:200]).text = message
        added += 1
    if added:
        suite.set("errors", str(int(suite.get("errors", "0")) + added))
        suite.set("tests", str(int(suite.get("tests", "0")) + added))
    tmp = path.with_name(f".{path.name}.tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
