"""Code run in a fresh interpreter, as a command runs: for what a process
keeps between runs (compiled code in its temporary directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(tmp: Path, code: str, *args: str, **env: str) -> str:
    """Run `code` with `args` in a new interpreter whose temporary directory
    is `tmp`; what it printed. It fails the test if the code fails."""
    environ = {**os.environ, "TMPDIR": str(tmp), **env}
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def kept_file(tmp: Path, name: str) -> Path:
    """The one file `name` of code kept in `tmp` (see `daemon.cli.kept_code`)."""
    (found,) = (tmp / f"spocd-code-{os.getuid()}").glob(f"{name}-*.marshal")
    return found
