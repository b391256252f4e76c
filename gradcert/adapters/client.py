"""The judge's side of the engine host: start a host, ask it things, enforce its limits.

A :class:`HostClient` runs one engine host at a time (gradcert's own,
``python -P -m gradcert.adapters.host``, or any command speaking
docs/host-protocol.md) and sends it requests. The host gets a large stack,
no core dumps, a file-size limit, stdin from /dev/null, stdout and stderr
appended to a file whose tail is kept for messages, its own process group,
and death with its parent. Every request has a budget of the host's CPU
time, read from ``/proc`` while the judge waits (and a generous wall
ceiling, for a host that sleeps): past it, or when the host dies or breaks
the protocol, the judge kills the host's process group and raises
:class:`HostTimeout` or :class:`HostCrashed`; the next request starts a
fresh host. An error reply raises :class:`EngineFailed` or
:class:`~gradcert.adapters.base.Unsupported`. Nothing the host sends back
is more than JSON: numbers, strings, lists.

This is the one way engine code is run on the judge's behalf, with limits;
the judge itself never imports an engine.

>>> from gradcert.adapters.protocol import wire_graph
>>> from gradcert.graph import trace
>>> with HostClient("gradcert") as host:
...     info = host.start()
...     result = host.request("run", graph=wire_graph(trace(lambda x: x * x, [3.0])), cpu=10)
>>> info.name, result["grads"]
('gradcert', [6.0])
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gradcert.adapters.base import Capabilities, Unsupported
from gradcert.adapters.protocol import (
    FDS_VARIABLE,
    MAX_MESSAGE,
    PATH_VARIABLE,
    VERSION,
    ProtocolError,
    decode,
    encode,
)

__all__ = [
    "LOAD_CPU",
    "Capabilities",
    "PROBE_CPU",
    "EngineFailed",
    "EngineInfo",
    "HostClient",
    "HostCrashed",
    "HostError",
    "HostTimeout",
    "LoadError",
    "Unsupported",
    "gradcert_host",
    "wall_ceiling",
]

LOAD_CPU = 120.0
"""CPU seconds a host may take to start and load its target (importing a framework)."""

PROBE_CPU = 5.0
"""CPU seconds one probe step (one op on a Value class) may take."""

STACK_BYTES = 512 << 20  # the host's main-thread stack: deep chains run in it
FILE_BYTES = 64 << 20  # largest file the host may write, its output file included
OUTPUT_KEEP = 1 << 20  # the output file is cut back to its tail past this size
TAIL_BYTES = 2000  # of the host's output, quoted in a crash's message

_HEADER = struct.Struct(">I")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_CPUS = os.cpu_count() or 1


def wall_ceiling(cpu: float) -> float:
    """The wall-clock backstop for a request with ``cpu`` seconds of CPU: generous enough
    that a loaded machine never reaches it; only a host that sleeps or blocks does.

    >>> wall_ceiling(10.0)
    110.0
    """
    return 10.0 * cpu + 10.0


def gradcert_host() -> list[str]:
    """The command that starts gradcert's own host (with this interpreter)."""
    return [sys.executable, "-P", "-m", "gradcert.adapters.host"]


# The first stage of every host: set the limits on itself, then exec the host's
# command (limits set before exec, in a process with one thread).
_STAGE = """\
import os, resource, sys
def limit(which, soft):
    try:
        hard = resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
            soft = hard
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):
        pass
limit(resource.RLIMIT_STACK, int(sys.argv[2]))
limit(resource.RLIMIT_CORE, 0)
limit(resource.RLIMIT_FSIZE, int(sys.argv[3]))
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: die with the judge
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(0)
os.execvp(sys.argv[4], sys.argv[4:])
"""


class HostError(Exception):
    """The host failed as a process: see :class:`HostCrashed`, :class:`HostTimeout`."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.output = output

    def __str__(self) -> str:
        if not self.output.strip():
            return self.message
        return f"{self.message}; the host's last output:\n{self.output.rstrip()}"


class HostCrashed(HostError):
    """The host exited, was killed by a signal, closed its pipe or broke the protocol."""


class HostTimeout(HostError):
    """The host went over a request's CPU budget (or the wall ceiling) and was killed."""

    def __init__(self, message: str, output: str = "", seconds: float = 0.0) -> None:
        super().__init__(message, output)
        self.seconds = seconds


class LoadError(HostError):
    """The host could not load the target (it is not an engine, or importing it failed,
    crashed or hung)."""


class EngineFailed(Exception):
    """An error reply: the engine raised, or gave something that is not a number.

    ``kind`` is ``"engine"`` or ``"request"`` (the host did not understand the
    request); ``message`` says what happened; ``node`` and ``op`` say where,
    when known.
    """

    def __init__(self, kind: str, type_: str, message: str, node: int | None = None,
                 op: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.type, self.message, self.node, self.op = kind, type_, message, node, op

    def __str__(self) -> str:
        where = "" if self.node is None else f" at node {self.node}"
        where += f" ({self.op})" if self.op else ""
        return f"{self.message}{where}"


@dataclass(frozen=True)
class EngineInfo:
    """What a host says about its engine in ``hello``: names, and what a reproducer
    needs (``prelude``: Python defining ``Value``, ``backward``, ``value``, ``grad``)."""

    name: str
    target: str
    import_line: str = ""
    make_value: str = "Value"
    prelude: str = ""
    value_class: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EngineInfo:
        known = {"name", "target", "import_line", "make_value", "prelude", "value_class"}
        return cls(name=str(d.get("name") or "engine"), target=str(d.get("target") or ""),
                   import_line=str(d.get("import_line") or ""),
                   make_value=str(d.get("make_value") or "Value"),
                   prelude=str(d.get("prelude") or ""), value_class=bool(d.get("value_class")),
                   extra={k: v for k, v in d.items() if k not in known})


def capabilities_from(d: Mapping[str, Any]) -> Capabilities:
    """A :class:`Capabilities` from the ``capabilities`` reply (or engine.json);
    :class:`ProtocolError` for one that is malformed."""
    try:
        return Capabilities(frozenset(str(o) for o in d.get("ops") or ()),
                            str(d.get("dtype") or "float64"),
                            has_zero_grad=bool(d.get("has_zero_grad")),
                            has_adam=bool(d.get("has_adam")),
                            notes={str(k): str(v) for k, v in dict(d.get("notes") or {}).items()},
                            functional=bool(d.get("functional")))
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"capabilities: {e}") from None


class HostClient:
    """One engine host at a time, started on demand, restarted after a failure.

    ``target``: what the host is asked to load in ``hello`` (None: its default);
    ``command``: the host's command (default :func:`gradcert_host`); ``path``:
    the directory ``module:attr`` targets import from (default: the current one).
    """

    def __init__(self, target: str | None = None, *, command: Sequence[str] | None = None,
                 path: str | None = None, load_cpu: float = LOAD_CPU) -> None:
        self.target = target
        self.command = list(command) if command else gradcert_host()
        self.path = os.path.abspath(path or os.getcwd())
        self.load_cpu = load_cpu
        self.info: EngineInfo | None = None
        self.starts = 0  # hosts started so far
        self.last_cpu = 0.0  # CPU seconds the last request took
        self.progress: dict[str, Any] = {}  # the last progress the host reported
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="gradcert-host-")
        self._log = os.path.join(self._dir, "output")
        self._ids = 0
        self._r = self._w = self._stat = -1
        self._buf = bytearray()

    # -- lifecycle -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self) -> EngineInfo:
        """A fresh host with its target loaded (``hello``); :class:`LoadError` if not."""
        self.kill()
        self._spawn()
        try:
            reply = self.request("hello", version=VERSION, target=self.target,
                                 cpu=self.load_cpu, what="loading the target")
        except EngineFailed as e:
            self.kill()
            raise LoadError(e.message) from None
        except HostError as e:
            raise LoadError(f"the engine host could not load the target: {e.message}",
                            e.output) from None
        if not isinstance(reply, dict) or reply.get("version") != VERSION:
            got = reply.get("version") if isinstance(reply, dict) else reply
            self.kill()
            raise LoadError(f"the host speaks protocol version {got!r}; this gradcert "
                            f"speaks version {VERSION}")
        self.info = EngineInfo.from_dict(reply.get("engine") or {})
        return self.info

    def _spawn(self) -> None:
        r1, w1 = os.pipe()  # judge -> host
        r2, w2 = os.pipe()  # host -> judge
        env = dict(os.environ)
        env[FDS_VARIABLE] = f"{r1},{w2}"
        env[PATH_VARIABLE] = self.path
        # the user's directory goes on sys.path only after gradcert is imported
        keep = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                if p and os.path.abspath(p) != self.path]
        env["PYTHONPATH"] = os.pathsep.join(keep)
        if not keep:
            del env["PYTHONPATH"]
        out = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-S", "-P", "-c", _STAGE, str(os.getpid()), str(STACK_BYTES),
                 str(FILE_BYTES), *self.command],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=(r1, w2),
                env=env, cwd=self.path, process_group=0, close_fds=True)
        except OSError as e:
            for fd in (r1, w1, r2, w2):
                os.close(fd)
            raise HostCrashed(f"cannot start the engine host {self.command!r}: {e}") from None
        finally:
            os.close(out)
        os.close(r1)
        os.close(w2)
        self._w, self._r = w1, r2
        os.set_blocking(self._w, False)
        self._buf.clear()
        self.starts += 1
        try:
            self._stat = os.open(f"/proc/{self._proc.pid}/stat", os.O_RDONLY)
        except OSError:
            self._stat = -1

    def kill(self) -> None:
        """Kill the host's process group (whatever it is doing) and forget it."""
        proc, self._proc = self._proc, None
        for fd in (self._r, self._w, self._stat):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._r = self._w = self._stat = -1
        if proc is None:
            return
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=30)

    def close(self) -> None:
        """Stop the host and remove its output file."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> HostClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- requests --------------------------------------------------------------

    def request(self, op: str, *, cpu: float, what: str = "",
                raw: dict[str, str] | None = None, **fields: Any) -> Any:
        """Send request ``op`` and wait for its result, the host limited to ``cpu`` seconds
        of CPU (what it used is then in :attr:`last_cpu`); ``raw``: fields given as JSON
        text (a graph from :func:`~gradcert.adapters.protocol.wire_json`).

        Raises :class:`EngineFailed` or :class:`Unsupported` for an error reply,
        :class:`HostTimeout` or :class:`HostCrashed` (the host is killed) otherwise.
        """
        if self._proc is None:
            try:
                self.start()
            except LoadError as e:
                raise HostCrashed(f"a fresh engine host could not start: {e.message}",
                                  e.output) from None
        self._ids += 1
        rid = self._ids
        done = False
        try:
            reply = self._exchange({"id": rid, "op": op, **fields}, cpu, what or op, raw)
            done = True
        finally:
            if not done:  # a crash, a timeout, or the judge interrupted: state unknown
                self.kill()
        self._trim_output()
        if reply.get("ok") is True:
            return reply.get("result")
        error = reply.get("error")
        if reply.get("ok") is not False or not isinstance(error, dict):
            self.kill()
            raise HostCrashed(f"the engine host broke the protocol: a reply that is neither "
                              f"ok nor an error: {str(reply)[:200]}")
        kind = str(error.get("kind") or "engine")
        message = str(error.get("message") or "no message")[:4000]
        node = error.get("node")
        op_ = error.get("op")
        if kind == "unsupported":
            raise Unsupported(message, str(op_) if op_ else None)
        raise EngineFailed(kind, str(error.get("type") or "Error")[:100], message,
                           node if type(node) is int else None,
                           str(op_)[:40] if op_ is not None else None)

    def _exchange(self, message: dict[str, Any], cpu: float, what: str,
                  raw: dict[str, str] | None = None) -> dict[str, Any]:
        out = memoryview(encode(message, raw))
        start = t0 = time.monotonic()
        cpu0 = base = self._cpu()  # CPU at the start of the request, and of the current step
        wall = wall_ceiling(cpu)
        steps = 0
        while True:
            now = time.monotonic()
            # the host cannot have used more CPU than wall time times the cores: read
            # /proc only once it could be over its budget
            could = (now - t0) * _CPUS
            timeout = 0.1 if could >= cpu else max(0.005, (cpu - could) / _CPUS)
            try:
                readable, writable, _ = select.select(
                    [self._r], [self._w] if out else [], [],
                    min(timeout, max(0.0, wall - (now - start))))
            except InterruptedError:
                continue
            if writable:
                try:
                    n = os.write(self._w, out[:1 << 16])
                    out = out[n:]
                except BlockingIOError:
                    pass
                except OSError:
                    self._crashed(f"closed its end of the pipe while {what}")
            if readable:
                try:
                    data = os.read(self._r, 1 << 20)
                except OSError as e:
                    self._crashed(f"broke its pipe ({e}) while {what}")
                if not data:
                    self._crashed(f"closed its end of the pipe while {what}")
                self._buf += data
                for reply in self._messages(what):
                    if "progress" in reply and "ok" not in reply:
                        p = reply["progress"]
                        self.progress = p if isinstance(p, dict) else {"note": str(p)}
                        steps += 1
                        if steps > 1000:
                            self._crashed(f"sent over 1,000 progress messages while {what}")
                        base, t0 = self._cpu(), time.monotonic()  # a new step, a new budget
                        continue
                    if reply.get("id") != message["id"]:
                        self._crashed(f"broke the protocol: a reply to request "
                                      f"{reply.get('id')!r}, not {message['id']}, while {what}")
                    self.last_cpu = max(0.0, self._cpu() - cpu0)
                    return reply
            now = time.monotonic()
            if (now - t0) * _CPUS >= cpu and self._cpu() - base > cpu:
                self._timed_out(f"used more than {cpu:g} s of CPU while {what}", cpu)
            if now - start > wall:
                self._timed_out(f"did not answer within {wall:g} s of wall time while {what} "
                                f"(it used {self._cpu() - cpu0:.3g} s of CPU: sleeping, or "
                                f"blocked?)", cpu)

    def _messages(self, what: str) -> list[dict[str, Any]]:
        found = []
        buf = self._buf
        while len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf)
            if size > MAX_MESSAGE:
                self._crashed(f"broke the protocol: a message of {size:,} bytes while {what}")
            if len(buf) < _HEADER.size + size:
                break
            body = bytes(buf[_HEADER.size:_HEADER.size + size])
            del buf[:_HEADER.size + size]
            try:
                found.append(decode(body))
            except ProtocolError as e:
                self._crashed(f"broke the protocol ({e}) while {what}")
        return found

    def _cpu(self) -> float:
        """The host's CPU time so far (user + system, every thread), from /proc."""
        if self._stat < 0:
            return 0.0
        try:
            text = os.pread(self._stat, 1024, 0).decode()
            fields = text[text.rindex(")") + 2:].split()
            return (int(fields[11]) + int(fields[12])) / _TICK
        except (OSError, ValueError, IndexError):
            return 0.0

    def _crashed(self, how: str) -> None:
        """Kill the host and raise :class:`HostCrashed`, saying how it ended if it did."""
        proc = self._proc
        status = None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                status = _exit_status(proc.wait(timeout=5))
        self.kill()
        if status is not None and "pipe" in how:
            how = how.replace("closed its end of the pipe", f"ended ({status})")
        elif status is not None:
            how += f" ({status})"
        raise HostCrashed(f"the engine host {how}", self.output_tail())

    def _timed_out(self, how: str, cpu: float) -> None:
        self.kill()
        raise HostTimeout(f"the engine {how}; the host was killed", self.output_tail(), cpu)

    # -- output ----------------------------------------------------------------

    def output_tail(self, n: int = TAIL_BYTES) -> str:
        """The end of what the host wrote to stdout and stderr."""
        try:
            with open(self._log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _trim_output(self) -> None:
        """Cut the output file back to its tail once it passes :data:`OUTPUT_KEEP`."""
        try:
            if os.stat(self._log).st_size <= OUTPUT_KEEP:
                return
            tail = self.output_tail(TAIL_BYTES * 4).encode()
            with open(self._log, "r+b") as f:
                f.truncate(0)
                f.write(b"[... output cut ...]\n" + tail)
        except OSError:
            pass

    # -- what the judge asks first ---------------------------------------------

    def capabilities(self, *, probe_cpu: float = PROBE_CPU) -> Capabilities:
        """What the engine supports. A probe step that hangs or crashes the host is
        noted and skipped, and a fresh host probes the rest."""
        skip: dict[str, str] = {}
        while True:
            self.progress = {}
            try:
                reply = self.request("capabilities", skip=skip, cpu=probe_cpu,
                                     what="probing the engine")
                return capabilities_from(reply or {})
            except (HostTimeout, HostCrashed, EngineFailed) as e:
                # the step it was on hung, crashed the host, or broke the probing itself
                step = self.progress.get("probing")
                if not isinstance(step, str) or step in skip or len(skip) > 64:
                    raise
                why = ("did not finish within " + f"{probe_cpu:g} s of CPU"
                       if isinstance(e, HostTimeout) else
                       f"crashed the host: {e.message}" if isinstance(e, HostCrashed) else
                       f"broke the probing: {e.message}")
                skip[step] = f"the probe {why}"[:300]
                self.kill()  # a fresh host for the rest
            except ProtocolError as e:
                self.kill()
                raise HostCrashed(f"the engine host broke the protocol: {e}") from None


def _exit_status(code: int) -> str:
    """How a process ended, in words.

    >>> _exit_status(3), _exit_status(-11)
    ('exit code 3', 'killed by signal SIGSEGV (a segmentation fault)')
    """
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    why = {"SIGSEGV": "a segmentation fault", "SIGXFSZ": "it wrote a file or output over "
           f"{FILE_BYTES >> 20} MiB", "SIGABRT": "an abort", "SIGBUS": "a bus error",
           "SIGFPE": "a floating-point trap", "SIGXCPU": "its CPU limit",
           "SIGKILL": "killed from outside, or out of memory"}.get(name)
    return f"killed by signal {name}" + (f" ({why})" if why else "")
