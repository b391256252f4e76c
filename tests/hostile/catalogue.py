"""The hostile catalogue: each entry, what it does, and what certification must say.

An entry names a module of :mod:`.engines` (the planted base engine with one
hostile change), the properties to run (a ``-k`` expression, so each
behaviour is met quickly), the settings it runs with, and what must come out:

- ``verdict``: ``"certified"``, ``"failed"``, or ``"load error"`` (certify
  stops with exit 2 and a message, writing no verdict);
- ``expect``: property id -> outcome, for the properties the behaviour reaches;
  every other selected property must pass;
- ``says``: text that must appear in the message (the failure of the first
  property of ``expect`` that did not pass, or the load error), attributing the
  outcome to the engine.

>>> get("segfault").expect
{'ops.values': 'crashed'}
>>> get("exits_at_import").verdict
'load error'
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CATALOGUE", "Hostile", "get"]


@dataclass(frozen=True)
class Hostile:
    """One hostile engine and what certifying it must give."""

    name: str
    select: str | None
    verdict: str
    expect: dict[str, str] = field(default_factory=dict)
    says: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"{__package__}.engines.{self.name}:Value"


FAST = {"GRADCERT_EXAMPLE_TIMEOUT": "1", "GRADCERT_LOAD_TIMEOUT": "2"}

CATALOGUE: tuple[Hostile, ...] = (
    # the process ends, or never gets going, while the target loads: exit 2, never 0
    Hostile("exits_at_import", None, "load error", says="exit code 0"),
    Hostile("sys_exit_at_import", None, "load error", says="SystemExit"),
    Hostile("loops_at_import", None, "load error", says="of CPU", env=FAST),
    # exits, exceptions of any type, signals, segfaults: that example's outcome
    Hostile("exits_in_op", "(values and exp) or kinks", "failed", {"ops.values": "crashed"},
            "exit code 0"),
    Hostile("sys_exit_in_op", "(values and log) or kinks", "failed", {"ops.values": "error"},
            "SystemExit"),
    Hostile("keyboard_interrupt", "(values and tanh) or dtype", "failed",
            {"ops.values": "error"}, "KeyboardInterrupt: tanh was interrupted"),
    Hostile("base_exception", "(values and sigmoid) or dtype", "failed",
            {"ops.values": "error"}, "Halt: sigmoid halts"),
    Hostile("segfault", "(values and exp) or kinks", "failed", {"ops.values": "crashed"},
            "SIGSEGV"),
    Hostile("signals_itself", "kinks or dtype", "failed", {"ops.kinks": "crashed"},
            "SIGTERM"),
    # hangs: the host's CPU time, or the wall ceiling for a sleeper
    Hostile("c_loop", "(values and log) or kinks", "failed", {"ops.values": "timeout"},
            "more than 1 s of CPU", FAST),
    Hostile("ignores_signals", "(values and exp) or kinks", "failed",
            {"ops.values": "timeout"}, "more than 1 s of CPU", FAST),
    Hostile("sleeps", "(values and exp) or kinks", "failed", {"ops.values": "timeout"},
            "wall time", {"GRADCERT_EXAMPLE_TIMEOUT": "0.5"}),
    Hostile("loop_in_constructor", "(values and log) or kinks", "failed",
            {"ops.values": "timeout"}, "of CPU", FAST),
    # the process's plumbing: stdio, file descriptors, threads, stdin, output
    Hostile("closes_stdout", "kinks or dtype or (values and exp)", "certified"),
    Hostile("closes_fds", "(values and log) or kinks", "failed", {"ops.values": "crashed"},
            "the engine host"),
    Hostile("thread_left_running", "kinks or dtype or oracle", "certified"),
    Hostile("reads_stdin", "(values and exp) or kinks", "failed", {"ops.values": "error"},
            "EOFError"),
    Hostile("megabyte_output", "(values and log) or large_graph", "failed",
            {"robustness.large_graph": "error"}, "File too large"),
    # process-wide state: patched modules, the FPU, recursion limits
    Hostile("patches_math_exp", "values and exp", "failed", {"ops.values": "failed"},
            "the oracle says"),
    Hostile("patches_the_judge", "gradients and exp", "failed", {"ops.gradients": "failed"},
            "the oracle says"),
    Hostile("fpu_upward", "adam or oracle or kinks", "certified"),
    Hostile("recursion_limit_at_import", "chain_10k or deep_chain or kinks", "certified"),
    Hostile("recursion_limit_in_backward", "kinks or oracle", "failed",
            {"ops.kinks": "error", "graphs.oracle": "error"}, "RecursionError"),
    Hostile("thread_affine", "oracle or kinks or deep_chain or adam", "certified"),
    # ops that exist but misbehave are findings, never "unsupported"
    Hostile("pytest_skip", "values and exp", "failed", {"ops.values": "error"}, "Skipped"),
    Hostile("data_none", "values and tanh", "failed", {"ops.values": "error"},
            "is not a number: None"),
    Hostile("always_raises", "values and sigmoid", "failed", {"ops.values": "error"},
            "RuntimeError: sigmoid is not ready yet"),
    Hostile("returns_a_string", "kinks", "failed", {"ops.kinks": "error"},
            "relu returned 'relu' (str)"),
)


def get(name: str) -> Hostile:
    """The entry named ``name``."""
    for e in CATALOGUE:
        if e.name == name:
            return e
    raise KeyError(f"no hostile engine {name!r}; known: {', '.join(e.name for e in CATALOGUE)}")
