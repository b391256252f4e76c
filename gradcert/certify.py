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

from gradcert.results import PropertyResult, Results, merge_records, ops_summary, read_records

__all__ = ["EXIT_CERTIFIED", "EXIT_FAILED", "EXIT_USAGE", "CertifyError", "certify",
           "pytest_args", "render_verdict"]

EXIT_CERTIFIED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_SAMPLES = 5000  # in results.json, across all properties


class CertifyError(Exception):
    """Bad usage, or a target that cannot be imported or adapted (exit code 2)."""


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
    """A progress bar over the suite's tests (rich), fed by the controller's reports.

    It replaces pytest's own progress dots; the verdict table follows it.
    """

    def __init__(self, stream: TextIO) -> None:
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

    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        self.bar.update(self.task, total=len(ids))

    def pytest_collection_finish(self, session: Any) -> None:
        if session.items:
            self.bar.update(self.task, total=len(session.items))

    def pytest_runtest_logreport(self, report: Any) -> None:
        from gradcert.properties.runner import property_id

        if report.failed:
            self.failed.add(report.nodeid)
        if report.when in ("setup", "call") and not report.failed:
            return  # a test is done at its teardown, or when it fails (a crash has no teardown)
        self.done.add(report.nodeid)
        path, _, name = report.nodeid.partition("::")
        bad = len(self.failed)
        self.bar.update(self.task, completed=len(self.done),
                        description=property_id(path, name),
                        failed=f"{bad} not passed" if bad else "")


def pytest_args(target: str | None, profile: str, seed: int | None, out: Path,
                jobs: int, select: str | None = None, files: Sequence[Path] | None = None,
                host: Sequence[str] | None = None) -> list[str]:
    """The pytest command line ``certify`` runs (also useful to run the suite by hand).

    >>> args = pytest_args("micrograd", "quick", 3, Path("rep"), 2)
    >>> args[args.index("-n") + 1], "--gradcert-target=micrograd" in args
    ('2', True)
    """
    from gradcert.properties.runner import PROFILES
    from gradcert.properties.suite import LEVEL_FILES, SUITE_DIR

    args = [str(f) for f in (files or LEVEL_FILES)]
    args += ["-c", str(out / ".pytest.ini"), "--rootdir", str(SUITE_DIR),
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
    if jobs > 0:
        args += ["-p", "xdist.plugin", "-n", str(jobs)]
    else:
        args += ["-p", "no:xdist"]
    if select:
        args += ["-k", select]
    return args


@contextlib.contextmanager
def _clean_environment(cwd: str) -> Iterator[None]:
    """No PYTEST_ADDOPTS or auto-loaded plugins from the user's environment; the current
    directory importable (for ``module:attr`` targets), in workers too."""
    saved = dict(os.environ)
    saved_path = list(sys.path)
    for k in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        os.environ.pop(k, None)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [cwd] + [p for p in saved.get("PYTHONPATH", "").split(os.pathsep) if p])
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sys.path[:] = saved_path


def certify(target: str | None = None, *, profile: str = "quick", seed: int | None = None,
            out: str | Path = "gradcert-report", jobs: int | None = None,
            select: str | None = None, stream: TextIO | None = None,
            quiet: bool = False, progress: bool = True,
            host: Sequence[str] | None = None) -> Results:
    """Certify ``target`` (None: gradcert's engine) and write the report to ``out``.

    The engine runs in engine host processes, never in this one or in the
    workers; ``host``: the command of a host that speaks for an engine itself
    (docs/host-protocol.md), instead of gradcert's host for ``target``.
    ``jobs``: pytest-xdist workers (default: the number of cores; 0 runs the
    judge in this process). ``select``: a pytest ``-k`` expression.
    ``progress``: a progress bar instead of pytest's own output (with workers).
    Raises :class:`CertifyError` for bad usage or an unusable target.
    """
    import pytest

    from gradcert.properties.registry import PROPERTIES
    from gradcert.properties.runner import PROFILES

    if profile not in PROFILES:
        raise CertifyError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 0:
        raise CertifyError(f"-j must be 0 or more, got {jobs}")
    if seed is not None and (type(seed) is not int or seed < 0):
        raise CertifyError(f"the seed must be a non-negative integer, got {seed!r}")
    cwd = os.getcwd()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("records", "reproducers"):
        shutil.rmtree(out / stale, ignore_errors=True)
    for stale in ("engine.json", "results.json", "junit.xml", "report.md", "report.html"):
        (out / stale).unlink(missing_ok=True)  # a run that dies must not leave an old verdict
    with _clean_environment(cwd):
        engine = _load_engine(target, host, out / "engine.json")  # in a host, limited
    if seed is None and not PROFILES[profile].derandomize:
        seed = random.SystemRandom().randrange(2**32)
    (out / ".pytest.ini").write_text("[pytest]\n")
    args = pytest_args(target, profile, seed, out, jobs, select, host=host)
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
              f"out {out}", file=stream)
    with _clean_environment(cwd), contextlib.redirect_stdout(stream), \
            (bar.bar if bar is not None else contextlib.nullcontext()):
        if quiet:
            args = args + ["-qq", "--no-header"]
        code = pytest.main(args, plugins=plugins)
    duration = time.perf_counter() - t0
    if int(code) in (3, 4):  # internal error, usage error
        raise CertifyError(f"the pytest session could not run (pytest exit code {int(code)}); "
                           + "; ".join(collector.errors)[:2000])
    if collector.errors:
        raise CertifyError("the suite could not be collected: " + collector.errors[0][:2000])
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
    )
    tmp = results.write(out / ".results.json.tmp")  # whole or not at all
    tmp.replace(out / "results.json")
    _write_reports(results, out)
    return results


def _write_reports(results: Results, out: Path) -> None:
    """``report.md`` and ``report.html`` beside results.json; a report that cannot be made
    is a warning, never a lost certification."""
    try:
        from gradcert import reports

        doc = results.to_dict()
        (out / "report.md").write_text(reports.to_markdown(doc), encoding="utf-8")
        (out / "report.html").write_text(reports.to_html(doc), encoding="utf-8")
    except Exception as e:
        print(f"gradcert certify: no report.md/report.html ({type(e).__name__}: {e})",
              file=sys.stderr)


def _load_engine(target: str | None, host: Sequence[str] | None,
                 known: Path) -> dict[str, Any]:
    """Load the target in an engine host (never in this process) and probe it once, for
    every worker: ``engine.json``. :class:`CertifyError` (exit 2) if it cannot be loaded.
    ``GRADCERT_LOAD_TIMEOUT`` (CPU seconds) limits the loading, as in the workers."""
    import pytest

    from gradcert.properties.engine import LoadError, describe, start_engine
    from gradcert.pytest_plugin import cpu_seconds

    try:
        load_cpu = cpu_seconds(os.environ.get("GRADCERT_LOAD_TIMEOUT"), "load timeout")
    except pytest.UsageError as e:
        raise CertifyError(str(e).removeprefix("gradcert: ")) from None
    try:
        engine = start_engine(target, command=host, known=known, load_cpu=load_cpu)
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


# -- the verdict table ---------------------------------------------------------


def _worst(p: PropertyResult) -> str:
    w = p.worst or {}
    try:
        u = float(w.get("ulps"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    if u != u:
        return "—"
    rel = w.get("rel")
    try:
        rel_s = f", rel {float(rel):.2g}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        rel_s = ""
    us = "inf" if u == float("inf") else (f"{u:.0f}" if u < 1e6 else f"{u:.2e}")
    try:
        tol_s = f", {float(w['of_bound']):.2g} of tol."
    except (KeyError, TypeError, ValueError):
        tol_s = ""
    return f"{us} ulps{rel_s}{tol_s}"


def _note(p: PropertyResult) -> str:
    n = p.notes
    if p.outcome == "unsupported":
        return str(n.get("unsupported", ""))[:90]
    if p.outcome != "passed" and p.failure:  # why, in a line: the engine's own message
        why = str(p.failure.get("summary") or p.failure.get("message") or "")
        return why.strip().splitlines()[0][:90] if why.strip() else ""
    for key in ("second_backward", "relu'(0)", "max_ok_depth", "failed_depth", "cpu_seconds"):
        if key in n:
            return f"{key}: {n[key]}"
    return ""


def render_verdict(results: Results, out: Path | None = None) -> str:
    """The verdict table as plain text (what ``certify`` prints, without colour).

    >>> r = Results("gradcert", [PropertyResult("ops.values", "ops", graphs_checked=9)],
    ...             duration_s=3.0)
    >>> print(render_verdict(r).splitlines()[-1])
    verdict: CERTIFIED  (9 graphs checked in 3.0 s, 3.0 graphs/s)
    """
    rows = [("property", "outcome", "worst error", "graphs", "note")]
    for p in results.properties:
        rows.append((p.id, p.outcome, _worst(p), str(p.graphs_checked), _note(p)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("levels: " + ", ".join(f"{lv} {st}" for lv, st in results.levels().items()))
    for p in results.properties:
        if p.reproducer:
            lines.append(f"reproducer for {p.id}: {p.reproducer}")
    if out is not None:
        lines.append(f"report: {out / 'results.json'}, {out / 'junit.xml'}")
    rate = results.graphs_per_s
    lines.append(f"verdict: {results.verdict.upper()}  ({results.graphs_checked} graphs checked "
                 f"in {results.duration_s:.1f} s"
                 + (f", {rate:.1f} graphs/s)" if rate is not None else ")"))
    return "\n".join(lines)


def print_verdict(results: Results, out: Path | None = None, stream: TextIO | None = None,
                  failures: bool = True) -> None:
    """Print the failure messages, then the verdict table (with colour on a terminal)."""
    stream = stream or sys.stdout
    if failures:
        for p in results.properties:
            if p.failure and p.failure.get("message"):
                print(f"\n{p.failure['message']}", file=stream)
    print("", file=stream)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_verdict(results, out), file=stream)
        return
    console = Console(file=stream, highlight=False,
                      width=None if stream.isatty() else 150)
    colour = {"passed": "green", "failed": "red", "error": "red", "timeout": "red",
              "crashed": "red", "unsupported": "yellow", "not run": "red"}
    seed = "derandomized" if results.seed is None else f"seed {results.seed}"
    table = Table(title=f"gradcert certify {results.target} ({results.profile}, {seed})")
    for col in ("level", "property", "outcome", "worst error", "graphs", "note"):
        table.add_column(col, justify="right" if col == "graphs" else "left")
    levels = results.levels()
    last = None
    for p in results.properties:
        lv = f"{p.level} [{colour.get(levels[p.level], '')}]{levels[p.level]}[/]" \
            if p.level != last else ""
        last = p.level
        table.add_row(lv, p.id, f"[{colour.get(p.outcome, '')}]{p.outcome}[/]", _worst(p),
                      str(p.graphs_checked), _note(p))
    console.print(table)
    text = render_verdict(results, out).splitlines()
    for line in text[text.index("") + 1:]:
        if line.startswith("verdict:"):
            c = "green" if results.verdict == "certified" else "red"
            console.print(f"[bold {c}]{line}[/]")
        else:
            console.print(line)
