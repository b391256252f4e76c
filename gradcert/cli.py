"""The ``gradcert`` command line.

Exit codes: 0 success (for certify: a complete verdict, written and certified),
1 a property failed, 2 usage, input, import or adapter error, or a ``-k``
that selects no property (with a one-line reason), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gradcert.settings import SETTINGS

__all__ = ["main"]


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gradcert",
        description="Certify autograd engines against an exact oracle.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="train the reference engine's MLP and tiny GPT block")
    demo.add_argument("--steps", type=int, default=None, help="training steps per model")

    cert = sub.add_parser("certify", help="run the conformance suite on an engine: a verdict, "
                          "results.json, junit.xml and reproducers")
    for s in SETTINGS.values():  # one flag per row of the settings table
        text = f"{s.help} [env {s.env}]"
        if s.flag is None:
            cert.add_argument(s.name, nargs="?", default=None, help=text)
        else:
            names = [s.short, s.flag] if s.short else [s.flag]
            if s.switch:
                cert.add_argument(*names, dest=s.name, default=None, help=text,
                                  action="store_const", const="1")
            else:
                cert.add_argument(*names, dest=s.name, default=None, help=text,
                                  metavar=s.metavar)
    cert.add_argument("-k", dest="select", default=None, metavar="EXPR",
                      help="run only the properties matching this pytest -k expression")

    rep = sub.add_parser("report", help="render a results.json (or checks.json) as Markdown, "
                         "HTML, JUnit XML or JSON")
    rep.add_argument("results", help="a results.json written by gradcert certify (or a "
                                     "checks.json written in a pytest session's --gradcert-out)")
    rep.add_argument("--format", choices=("md", "html", "junit", "json"), default="md")
    rep.add_argument("-o", "--output", help="write to this file instead of standard output")

    cmp_ = sub.add_parser("compare", help="engines side by side, from their results.json files")
    cmp_.add_argument("results", nargs="+", help="results.json files, one per engine")
    cmp_.add_argument("--format", choices=("term", "md", "html"), default="term")
    cmp_.add_argument("-o", "--output", help="write to this file instead of standard output")

    mrg = sub.add_parser("merge", help="merge the results.json of shards into one")
    mrg.add_argument("results", nargs="+", help="results.json files of one target")
    mrg.add_argument("-o", "--output", required=True, help="the merged results.json")
    return p


def load_results(path: str) -> Any:
    """Read a results document, or raise UsageError saying what is wrong with it."""
    from gradcert.results import Results, ResultsError

    try:
        return Results.load(path)
    except ResultsError as e:
        raise UsageError(str(e)) from None


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e.strerror or e}") from None
    print(f"wrote {output}", file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    from gradcert import reports

    results = load_results(args.results)
    if args.format == "json":
        text = results.to_json(indent=1) + "\n"
    elif args.format == "html":
        text = reports.to_html(results)
    elif args.format == "junit":
        text = reports.to_junit(results)
    else:
        text = reports.to_markdown(results)
    _emit(text, args.output)
    return 0


def _report_links(paths: list[str], fmt: str, output: str | None) -> list[str | None]:
    """For each results file, its engine's own report (report.html or report.md beside
    it), relative to where the comparison is written; None where there is none."""
    import os

    base = Path(output).resolve().parent if output else Path.cwd()
    links: list[str | None] = []
    for p in paths:
        report = Path(p).resolve().parent / ("report.md" if fmt == "md" else "report.html")
        links.append(os.path.relpath(report, base) if report.is_file() else None)
    return links


def _compare(args: argparse.Namespace) -> int:
    from gradcert import reports

    results = [load_results(p) for p in args.results]
    if args.format == "term" and args.output is None:
        reports.compare(results).print()
        return 0
    comparison = reports.compare(results, _report_links(args.results, args.format, args.output))
    if args.format == "html":
        text = comparison.to_html()
    elif args.format == "md":
        text = comparison.to_markdown()
    else:
        text = _terminal_text(comparison)
    _emit(text, args.output)
    return 0


def _terminal_text(comparison: Any) -> str:
    import io

    from rich.console import Console

    buf = io.StringIO()
    comparison.print(Console(file=buf, width=80, color_system=None))
    return buf.getvalue()


def _merge(args: argparse.Namespace) -> int:
    from gradcert.results import Results, ResultsError

    try:
        merged = Results.merge([load_results(p) for p in args.results])
    except ResultsError as e:
        raise UsageError(str(e)) from None
    _emit(merged.to_json(indent=1) + "\n", args.output)
    return 0


def _certify(args: argparse.Namespace) -> int:
    from gradcert.certify import (
        EXIT_INTERRUPTED,
        CertifyError,
        Interrupted,
        certify,
    )
    from gradcert.reports.terminal import print_verdict
    from gradcert.settings import SettingError, resolve

    try:
        v = resolve({s: getattr(args, s) for s in SETTINGS})
    except SettingError as e:
        raise UsageError(str(e)) from None
    out = Path(v["out"] or "gradcert-report")
    try:
        results = certify(v["target"], profile=v["profile"], seed=v["seed"], out=out,
                          jobs=v["jobs"], select=args.select,
                          example_timeout=v["example_timeout"], path=v["path"],
                          host=v["host"], load_timeout=v["load_timeout"],
                          strict=v["strict"], range=v["range"])
    except Interrupted as e:
        print(f"gradcert certify: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CertifyError as e:
        raise UsageError(str(e)) from None
    print_verdict(results, out.resolve())
    return 0 if results.verdict == "certified" else 1


def _demo(args: argparse.Namespace) -> int:
    from gradcert.engine import demo

    return demo.main([] if args.steps is None else ["--steps", str(args.steps)])


COMMANDS = {"certify": _certify, "demo": _demo, "report": _report, "compare": _compare,
            "merge": _merge}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        print(f"gradcert {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gradcert {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
