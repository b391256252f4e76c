"""The ``gradcert`` command line.

Exit codes: 0 success (certified), 1 a property failed, 2 usage, input,
import or adapter error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

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
    cert.add_argument("target", nargs="?", default=None,
                      help="a built-in adapter name (gradcert, micrograd, torch, jax, autograd) "
                           "or module:attr naming an adapter or a Value class "
                           "(default: gradcert's own engine) [env GRADCERT_TARGET]")
    cert.add_argument("--profile", default=None, choices=("quick", "ci", "thorough"),
                      help="quick (default), ci (derandomized) or thorough "
                           "[env GRADCERT_PROFILE]")
    cert.add_argument("--seed", default=None,
                      help="hypothesis seed: reproduces a run exactly [env GRADCERT_SEED]")
    cert.add_argument("--out", default=None,
                      help="report directory (default gradcert-report) [env GRADCERT_OUT]")
    cert.add_argument("-j", "--jobs", type=int, default=None,
                      help="parallel workers (default: the number of cores; 0: in-process, "
                           "no crash isolation) [env GRADCERT_JOBS]")
    cert.add_argument("-k", dest="select", default=None, metavar="EXPR",
                      help="run only the properties matching this pytest -k expression")
    cert.add_argument("--host", default=None, metavar="CMD",
                      help="certify the engine behind CMD, an engine host that speaks "
                           "docs/host-protocol.md (an engine in another language) "
                           "[env GRADCERT_HOST]")

    rep = sub.add_parser("report", help="render a results.json as Markdown, HTML or JSON")
    rep.add_argument("results", help="a results.json written by gradcert certify")
    rep.add_argument("--format", choices=("md", "html", "json"), default="md")
    rep.add_argument("-o", "--output", help="write to this file instead of standard output")

    cmp_ = sub.add_parser("compare", help="engines side by side, from their results.json files")
    cmp_.add_argument("results", nargs="+", help="results.json files, one per engine")
    cmp_.add_argument("--format", choices=("term", "md", "html"), default="term")
    cmp_.add_argument("-o", "--output", help="write to this file instead of standard output")

    mrg = sub.add_parser("merge", help="merge the results.json of shards into one")
    mrg.add_argument("results", nargs="+", help="results.json files of one target")
    mrg.add_argument("-o", "--output", required=True, help="the merged results.json")
    return p


def load_results(path: str) -> dict[str, Any]:
    """Read a results document, or raise UsageError saying what is wrong with it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != "gradcert.results":
        raise UsageError(f"{path} is not a gradcert results document "
                         "(expected a JSON object with \"schema\": \"gradcert.results\")")
    return doc


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

    doc = load_results(args.results)
    if args.format == "json":
        text = json.dumps(doc, indent=1) + "\n"
    elif args.format == "html":
        text = reports.to_html(doc)
    else:
        text = reports.to_markdown(doc)
    _emit(text, args.output)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from gradcert import reports

    comparison = reports.compare([load_results(p) for p in args.results])
    if args.format == "term" and args.output is None:
        comparison.print()
    else:
        _emit(comparison.to_html() if args.format == "html" else comparison.to_markdown(),
              args.output)
    return 0


def _merge(args: argparse.Namespace) -> int:
    from gradcert.reports.merge import MergeError, merge

    try:
        merged = merge([load_results(p) for p in args.results])
    except MergeError as e:
        raise UsageError(str(e)) from None
    _emit(json.dumps(merged, indent=1) + "\n", args.output)
    return 0


def _certify(args: argparse.Namespace) -> int:
    import os

    from gradcert.certify import CertifyError, certify, print_verdict

    env = os.environ.get
    seed = args.seed if args.seed is not None else env("GRADCERT_SEED")
    jobs = args.jobs if args.jobs is not None else env("GRADCERT_JOBS")
    try:
        seed_n = None if seed in (None, "") else int(seed)
        jobs_n = None if jobs in (None, "") else int(jobs)
    except ValueError:
        raise UsageError(f"--seed and -j take integers, got seed={seed!r}, jobs={jobs!r}") \
            from None
    out = Path(args.out or env("GRADCERT_OUT") or "gradcert-report")
    host = _host_command(args.host or env("GRADCERT_HOST"))
    try:
        results = certify(args.target or env("GRADCERT_TARGET") or None,
                          profile=args.profile or env("GRADCERT_PROFILE") or "quick",
                          seed=seed_n, out=out, jobs=jobs_n, select=args.select, host=host)
    except CertifyError as e:
        raise UsageError(str(e)) from None
    print_verdict(results, out.resolve())
    return 0 if results.verdict == "certified" else 1


def _host_command(text: str | None) -> list[str] | None:
    """``--host CMD`` as argv (shell words); UsageError if it cannot be split."""
    import shlex

    if not text or not text.strip():
        return None
    try:
        return shlex.split(text)
    except ValueError as e:
        raise UsageError(f"--host {text!r}: {e}") from None


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


if __name__ == "__main__":
    sys.exit(main())
