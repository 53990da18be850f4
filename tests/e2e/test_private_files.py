"""What spocd creates is private to its user whatever the umask (issue 20.8):
the database holds every mail and the HMAC key."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import env


def run(*words: str, config: Path, input: bytes) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", *words, "-c", str(config)],
        input=input,
        capture_output=True,
        env=env(),
        umask=0o022,  # the usual default outside systemd
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_var_the_database_the_spool_and_the_maildir_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    config = write_config(
        tmp_path,
        f"sqlite:///{var}/spocd.db",
        outgoing={"maildir": str(var / "sent")},
        paths={"spool": str(var / "spool")},
    )
    run("ingest", "-", config=config, input=make_mail(subject="Private"))
    run("ingest", "--queue-only", "-", config=config, input=make_mail(subject="Spooled"))

    folders = [var, var / "spool", *(var / "spool").iterdir(), var / "sent"]
    folders += list((var / "sent").iterdir())
    assert {str(p): oct(mode(p)) for p in folders} == {str(p): "0o700" for p in folders}
    files = [p for p in var.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert var / "spocd.db" in files
    assert any(p.parent.name == "new" and "spool" in p.parts for p in files)
    assert any("sent" in p.parts for p in files)
    assert {str(p): oct(mode(p)) for p in files} == {str(p): "0o600" for p in files}
