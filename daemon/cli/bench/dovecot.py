"""A private Dovecot on a free port of 127.0.0.1, for tests and `bench_imap`.

Each instance lives in a temp folder of its own (config, runtime sockets,
log, mail), accepts any user name with the password `PASSWORD` (so a test
takes a fresh, empty mailbox by picking a new name), and can be stopped and
started again on the same port. With `tls=True` it offers STARTTLS on `port`
and implicit TLS on `tls_port`, with a self-signed certificate made by
`openssl` for 127.0.0.1 and localhost.

Facts about Dovecot 2.3 run as root that this relies on: the login and
internal users must be the packaged `dovenull`/`dovecot`; the userdb must
return a non-root uid whose mail folder it owns; the runtime and state
folders need world-readable parents; `dovecot -c CONF` daemonizes and
`kill $(cat BASE/master.pid)` stops it. Only root starts one here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from imapclient import IMAPClient

from daemon.cli.bench.tcp_ports import free_port

PASSWORD = "s3cret"
MISSING = "Dovecot is not installed (Debian package dovecot-imapd)"
NOT_ROOT = "a private Dovecot is started as root here (it switches to its dovecot users)"


def find_dovecot() -> str | None:
    """The dovecot binary, or None."""
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"Dovecot does not listen on 127.0.0.1:{port} after {timeout}s")


def new_user() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


class Dovecot:
    def __init__(self, *, tls: bool = False, binary: str | None = None) -> None:
        found = binary or find_dovecot()
        if found is None:
            raise FileNotFoundError(MISSING)
        if os.geteuid() != 0:
            raise PermissionError(NOT_ROOT)
        self.binary = found
        self.root = Path(tempfile.mkdtemp(prefix="spocd-dovecot-"))
        self.root.chmod(0o755)
        self.tls = tls
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.cert_file = self.root / "cert.pem"
        self.key_file = self.root / "key.pem"
        self.log_file = self.root / "dovecot.log"
        self.base_dir = self.root / "run"
        self.home = self.root / "home"
        self.user, self.group, self.login_user = "dovecot", "dovecot", "dovenull"
        self.home.mkdir()
        shutil.chown(self.home, self.user, self.group)
        (self.root / "state").mkdir()
        if tls:
            self._make_certificate()
        self.config = self.root / "dovecot.conf"
        self.config.write_text(self._config(), encoding="utf-8")

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> Dovecot:
        subprocess.run([self.binary, "-c", str(self.config)], check=True, timeout=30)
        wait_for_port(self.port)
        if self.tls:
            wait_for_port(self.tls_port)
        return self

    def stop(self) -> None:
        pid_file = self.base_dir / "master.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        children = _children(pid)
        _signal(pid, signal.SIGTERM)
        for child in children:  # an imap process may serve on for seconds after its master
            _signal(child, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
        while pid_file.exists() and time.monotonic() < deadline + 5:
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- mail -------------------------------------------------------------------------

    def client(self, user: str) -> IMAPClient:
        """A plain loopback connection, logged in as `user`."""
        client = IMAPClient("127.0.0.1", self.port, ssl=False, timeout=30)
        client.login(user, PASSWORD)
        return client

    def append(self, user: str, messages: Iterable[bytes], folder: str = "INBOX") -> None:
        with self.client(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw)

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw messages in a folder (not flagged deleted), in UID order."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search(["NOT", "DELETED"])
            data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [data[uid][b"BODY[]"] for uid in sorted(data)]

    def count(self, user: str, folder: str = "INBOX") -> int:
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return 0
            client.select_folder(folder, readonly=True)
            return len(client.search(["NOT", "DELETED"]))

    def sessions(self, user: str, command: str = "") -> list[int]:
        """Process ids of the imap processes serving `user` (to kill or stop
        one: a dropped or hung connection, as a network or a server makes);
        with `command` ("IDLE"), only those running it now."""
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                title = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("dovecot/imap ") and f"[{user} " in title and command in title:
                pids.append(int(cmdline.parent.name))
        return pids

    def log(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # --- setup ------------------------------------------------------------------------

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(self.key_file),
                "-out",
                str(self.cert_file),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.key_file.chmod(0o600)

    def _config(self) -> str:
        ssl_lines = (
            f"ssl = yes\nssl_cert = <{self.cert_file}\nssl_key = <{self.key_file}\n"
            if self.tls
            else "ssl = no\n"
        )
        imaps = f"address = 127.0.0.1\n    port = {self.tls_port}" if self.tls else "port = 0"
        return f"""# private instance; written by daemon/testbed.py
protocols = imap
listen = 127.0.0.1
base_dir = {self.base_dir}
state_dir = {self.root / "state"}
log_path = {self.log_file}
default_login_user = {self.login_user}
default_internal_user = {self.user}
default_internal_group = {self.group}
first_valid_uid = 1
verbose_proctitle = yes
{ssl_lines}disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
mail_location = maildir:~/Maildir
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={self.user} gid={self.group} home={self.home}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
service anvil {{
  # mode 0: the auth process cannot reach the penalty socket, which turns
  # off Dovecot's growing delay of logins after failed ones (tests fail on
  # purpose)
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(stat.parent.name))
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
