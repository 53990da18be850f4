"""Run spocd as a real process, from this source tree."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    """The environment of a child spocd: this tree first on its path."""
    result = dict(os.environ)
    result["PYTHONPATH"] = str(ROOT) + os.pathsep + result.get("PYTHONPATH", "")
    result.pop("SPOCD_CONFIG", None)
    result.update(extra)
    return result


def spocd(
    *args: str,
    config: Path | None = None,
    input: bytes | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    **extra: str,
) -> subprocess.CompletedProcess[bytes]:
    """One spocd command to completion; output captured."""
    cmd = [sys.executable, "-m", "daemon", *args]
    if config is not None:
        cmd += ["-c", str(config)]
    return subprocess.run(
        cmd,
        input=input,
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
        env=env(**extra),
        check=False,
    )


def start_daemon(
    config: Path, *, log: Path, cwd: Path | None = None, **extra: str
) -> subprocess.Popen[bytes]:
    """`spocd run` in the background; its log goes to `log`."""
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "-c", str(config)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env(**extra),
        )


def wait_for_port(
    host: str, port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"spocd exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    """Poll until `predicate()` is true (a condition, not a clock: no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped (asked of the OS: a
    multiprocessing `join` racing another thread's reap can read a dead
    process as alive)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:  # gone, or going as it was read (ESRCH)
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """The processes `pid` started (its helpers), from any of its threads:
    `/proc/PID/task/TID/children` would list only one thread's."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def as_at_a_terminal() -> None:
    """`preexec_fn` for a child that takes SIGINT as Ctrl-C does, whatever
    the test runner (an xdist worker, say) does with SIGINT itself."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: Runs argv[1:] as a grandchild and reports its peak memory. A child forked
#: straight from pytest starts with pytest's own resident size (ru_maxrss keeps
#: it across exec); forked from this small launcher it starts small.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\npeak_rss_kb={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measured(cmd: list[str]) -> list[str]:
    """`cmd` run so that its peak RSS ends its stderr (`peak_rss_kb=N`)."""
    return [sys.executable, "-c", _MEASURE, *cmd]


def peak_rss_kb(stderr: str) -> int:
    """The peak RSS a `measured` command reported."""
    return int(stderr.rsplit("peak_rss_kb=", 1)[1].split()[0])
