"""The ``gradcert`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gradcert",
        description="Certify autograd engines against an exact oracle.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train the reference engine's MLP and tiny GPT block")
    demo.add_argument("--steps", type=int, default=None, help="training steps per model")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from gradcert.engine import demo

        return demo.main([] if args.steps is None else ["--steps", str(args.steps)])
    _parser().print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
