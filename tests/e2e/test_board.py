"""The SLA board served by a real `spocd run`: statuses, headers, order,
filters, JSON, who may see it (loopback, Basic login, the refusal to start)."""

from __future__ import annotations

import base64
import json
import re
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.app import slaclock
from daemon.config import load_settings
from daemon.core.passwords import hash_password
from tests.conftest import ROOT, write_config
from tests.support.clock import ManualClock
from tests.support.flow import ingest
from tests.support.mail import make_mail
from tests.support.png import pixels
from tests.support.proc import spocd, start_daemon, wait_for_port
from tests.support.relay import free_port

CERT, KEY = ROOT / "tests/data/tls/cert.pem", ROOT / "tests/data/tls/key.pem"
HOSTILE = '<script>alert("x")</script> & <b>printer</b>'


def _desk(tmp_path: Path, sqlite_url: str, **http: object) -> tuple[Path, int]:
    port = free_port()
    config = write_config(
        tmp_path,
        sqlite_url,
        smtp={"enabled": False},
        http={"enabled": True, "port": port, **http},
    )
    return config, port


def fill(config: Path) -> None:
    """Four open tickets with different deadlines, and one resolved, made
    with the application itself at moments in the past."""
    from daemon.service.wiring import App

    now = datetime.now(UTC)
    clock = ManualClock(now - timedelta(hours=6))
    app = App(load_settings(config), clock)
    try:
        # 1: P1 6 h ago (the "always" calendar): breached.
        ingest(app, make_mail(subject="Server room is hot", sender="a@client.example"))
        clock.set(now - timedelta(minutes=5))
        ingest(app, make_mail(subject=HOSTILE, sender="b@client.example"))  # 2: P3, fresh
        ingest(app, make_mail(subject="VPN down", sender="c@client.example"))  # 3: P1, fresh
        ingest(app, make_mail(subject="Pending one", sender="d@client.example"))  # 4: pending
        ingest(app, make_mail(subject="Done already", sender="e@client.example"))  # 5: resolved
        with app.store.transaction() as tx:
            for number, change in (
                (1, {"priority": "P1", "assignee": "anna@example.com"}),
                (3, {"priority": "P1", "group": "telephony"}),
                (4, {"status": "pending"}),
                (5, {"status": "resolved"}),
            ):
                ticket = tx.tickets.get(number, for_update=True)
                assert ticket is not None
                for key, value in change.items():
                    setattr(ticket, key, value)
                if change.get("status") == "resolved":
                    ticket.resolved_at = clock.now()
                slaclock.reschedule(tx, ticket, app.runtime.rules, clock.now())
                tx.tickets.save(ticket)
    finally:
        app.close()


@pytest.fixture
def running(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[int, Any]]:
    config, port = _desk(tmp_path, sqlite_url)
    fill(config)
    proc = start_daemon(config, log=tmp_path / "run.log")
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def get(
    port: int, path: str, headers: dict[str, str] | None = None, *, tls: bool = False
) -> tuple[int, Any, str]:
    scheme = "https" if tls else "http"
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}", headers=headers or {})
    context = ssl.create_default_context(cafile=str(CERT)) if tls else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:
            return reply.status, reply.headers, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def test_board_page_and_json_on_loopback(running: tuple[int, Any]) -> None:
    port, _ = running
    for path in ("/", "/board"):
        status, headers, body = get(port, path)
        assert status == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Content-Security-Policy"] == "default-src 'self'"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
        assert '<meta http-equiv="refresh" content="30">' in body
        assert "<script" not in body  # the hostile subject is escaped, not run
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;" in body
        assert "Done already" not in body  # resolved: not open
    status, headers, text = get(port, "/board.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    data = json.loads(text)
    tickets = data["tickets"]
    assert [t["id"] for t in tickets][:1] == ["HD-1"]  # breached 6 h ago: first
    assert {t["id"] for t in tickets} == {"HD-1", "HD-2", "HD-3", "HD-4"}
    left = [t["seconds_left"] for t in tickets]
    assert left == sorted(left)
    by_id = {t["id"]: t for t in tickets}
    assert by_id["HD-1"]["sla_state"] == "breached" and by_id["HD-1"]["seconds_left"] < 0
    assert by_id["HD-4"]["sla_state"] == "paused"
    assert by_id["HD-3"]["next_deadline"] == "response"
    assert by_id["HD-2"]["contract"] is None
    assert datetime.fromisoformat(by_id["HD-3"]["due"])  # ISO time
    assert data["counts"]["open"] == 4 and data["counts"]["breached"] == 1
    assert data["counts"]["unassigned"] == 3
    assert data["counts"]["by_priority"]["P1"] == 2
    # The page lists the rows in the same order.
    _, _, page = get(port, "/board")
    positions = [page.index(f'id="{t["id"]}"') for t in tickets]
    assert positions == sorted(positions)


def test_filters_and_language(running: tuple[int, Any]) -> None:
    port, _ = running
    one = json.loads(get(port, "/board.json?group=telephony")[2])["tickets"]
    assert [t["id"] for t in one] == ["HD-3"]
    mine = json.loads(get(port, "/board.json?assignee=ANNA@example.com")[2])["tickets"]
    assert [t["id"] for t in mine] == ["HD-1"]
    p1 = json.loads(get(port, "/board.json?priority=P1")[2])["tickets"]
    assert [t["id"] for t in p1] == ["HD-1", "HD-3"]
    none = json.loads(get(port, "/board.json?contract=-")[2])["tickets"]
    assert len(none) == 4  # no contracts yet: every ticket's is "-"
    assert json.loads(get(port, "/board.json?contract=acme")[2])["tickets"] == []
    _, _, page = get(port, "/board?group=telephony&lang=pl")
    assert 'lang="pl"' in page and "Tablica SLA" in page and "HD-3" in page
    assert 'id="HD-1"' not in page
    _, _, english = get(port, "/board?lang=xx")
    assert "SLA board" in english and "przekroczone" not in english
    assert "breached" in english  # a text label beside the colour
    status, headers, css = get(port, "/board.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert "tr.sla-breached" in css
    assert get(port, "/nothing")[0] == 404
    assert get(port, "/healthz")[0] == 200


def test_refuses_to_start_on_all_addresses_without_login(tmp_path: Path, sqlite_url: str) -> None:
    config, _ = _desk(tmp_path, sqlite_url, host="0.0.0.0")
    result = spocd("run", config=config, timeout=60)
    assert result.returncode == 78
    err = result.stderr.decode()
    assert "http.host" in err and "http.users_file" in err and "http.trusted_proxy_header" in err
    assert "Traceback" not in err


def test_basic_login_over_tls_wrong_and_right(tmp_path: Path, sqlite_url: str) -> None:
    users = tmp_path / "board-users"
    users.write_text(f"lead:{hash_password('s3cret pass')}\n", encoding="utf-8")
    config, port = _desk(
        tmp_path,
        sqlite_url,
        host="0.0.0.0",
        users_file=str(users),
        tls_cert_file=str(CERT),
        tls_key_file=str(KEY),
    )
    fill(config)
    proc = start_daemon(config, log=tmp_path / "run.log")
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
        status, headers, _ = get(port, "/board", tls=True)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        wrong = base64.b64encode(b"lead:nope").decode()
        assert get(port, "/board.json", {"Authorization": f"Basic {wrong}"}, tls=True)[0] == 401
        right = base64.b64encode(b"lead:s3cret pass").decode()
        status, _, body = get(port, "/board.json", {"Authorization": f"Basic {right}"}, tls=True)
        assert status == 200 and len(json.loads(body)["tickets"]) == 4
        status, _, page = get(port, "/", {"Authorization": f"Basic {right}"}, tls=True)
        assert status == 200 and "HD-1" in page
        assert get(port, "/healthz", tls=True)[0] == 200  # probes need no login
        for _ in range(6):
            status, _, _ = get(port, "/board", {"Authorization": f"Basic {wrong}"}, tls=True)
        assert status == 429  # too many failures in a row: the client waits
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    log = (tmp_path / "run.log").read_text()
    # Once per streak: the first wrong try, and the run of six after the good login.
    assert log.count("board login failed") == 2


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            *args,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_board_in_headless_chromium(running: tuple[int, Any], tmp_path: Path) -> None:
    """The page as a browser builds it (scripts or not, it has none), and as
    it looks: the style sheet loads under the CSP and breached rows are red."""
    port, _ = running
    url = f"http://127.0.0.1:{port}/board"
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")
    html = dom.stdout.decode()
    rows = re.findall(r'<tr class="sla-(\w+)" id="(HD-\d+)">', html)
    assert rows[0] == ("breached", "HD-1")
    assert {tag for _, tag in rows} == {"HD-1", "HD-2", "HD-3", "HD-4"}
    assert ("paused", "HD-4") in rows
    assert '<span class="badge">breached</span>' in html  # text, not colour alone
    assert 'id="count-open">4<' in html and 'id="count-breached">1<' in html
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert ">Clear filters</a>" in html and "built-in method" not in html
    shot = tmp_path / "board.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,900", url)
    assert result.returncode == 0 and shot.is_file(), result.stderr.decode(errors="replace")
    width, height, colours = pixels(shot.read_bytes())
    assert (width, height) == (1400, 900)
    assert colours[(0xB0, 0x00, 0x20)] > 100  # the breached badge, from board.css
    assert colours[(0xFD, 0xE7, 0xEA)] > 1000  # the breached row's background
    assert colours[(0x2E, 0x7D, 0x32)] > 100  # an ok badge


def test_trusted_proxy_header(tmp_path: Path, sqlite_url: str) -> None:
    """The header is believed from a trusted proxy only; others need Basic."""
    users = tmp_path / "board-users"
    users.write_text(f"lead:{hash_password('pw')}\n", encoding="utf-8")
    config, port = _desk(
        tmp_path,
        sqlite_url,
        host="0.0.0.0",
        trusted_proxy_header="X-Remote-User",
        trusted_proxies=["127.0.0.1/32"],
    )
    (tmp_path / "other").mkdir()
    other, other_port = _desk(
        tmp_path / "other",
        sqlite_url.replace("spocd.db", "other.db"),
        host="0.0.0.0",
        users_file=str(users),
        trusted_proxy_header="X-Remote-User",
        trusted_proxies=["192.0.2.0/24"],
    )
    procs = [
        start_daemon(config, log=tmp_path / "run.log"),
        start_daemon(other, log=tmp_path / "other.log"),
    ]
    try:
        wait_for_port("127.0.0.1", port, proc=procs[0])
        wait_for_port("127.0.0.1", other_port, proc=procs[1])
        assert get(port, "/board.json", {"X-Remote-User": "anna"})[0] == 200
        assert get(port, "/board.json")[0] == 401  # the proxy let nobody in
        # 127.0.0.1 is no trusted proxy here: its header proves nothing.
        assert get(other_port, "/board.json", {"X-Remote-User": "anna"})[0] == 401
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
