"""The SMTP listener under abuse: every resource a client can take is bounded,
nobody outside gets a relay, STARTTLS and AUTH work and cannot be skipped.

Real sockets against a real aiosmtpd listener; the settings come from a
spocd.toml, so the config keys are exercised too.
"""

from __future__ import annotations

import errno
import smtplib
import socket
import ssl
import time
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiosmtpd.controller
import pytest

from daemon.adapters.smtp.listener import SmtpIntake
from daemon.adapters.storage.store import SqlStore
from daemon.config import Settings, load_settings
from daemon.core.passwords import hash_password
from tests.conftest import DATA, write_config
from tests.integration.conftest import queued
from tests.support.mail import make_mail
from tests.support.proc import wait_until
from tests.support.relay import free_port

CERT, KEY = DATA / "tls" / "cert.pem", DATA / "tls" / "key.pem"
HELPDESK = "helpdesk@example.com"


def listener_settings(tmp_path: Path, db_url: str, **smtp: object) -> Settings:
    config = write_config(tmp_path, db_url, smtp={"port": free_port(), **smtp})
    return load_settings(config)


def client_tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(CERT))


def mail_with_line(length: int, start: bytes = b"x") -> bytes:
    """A message whose body has one line of `length` octets, CRLF included."""
    head = make_mail(body="short\n").split(b"\n\n", 1)[0].replace(b"\n", b"\r\n")
    return head + b"\r\n\r\n" + start + b"x" * (length - 3) + b"\r\n"


# --- line length -------------------------------------------------------------------------


def test_lines_up_to_rfc_5321s_1000_octets_pass_and_longer_get_500(listen, store) -> None:  # type: ignore[no-untyped-def]
    intake = listen()
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        cases = [
            (mail_with_line(1000), 250),
            # smtplib doubles the leading dot (1001 octets on the wire): still 1000.
            (mail_with_line(1000, start=b"."), 250),
            (mail_with_line(1002), 500),
            (mail_with_line(100_000), 500),
        ]
        for raw, expected in cases:
            client.mail("jan@example.org")
            client.rcpt(HELPDESK)
            code, reply = client.data(raw)
            assert code == expected, (len(raw), reply)
            if code != 250:
                client.rset()
        # A command line over the limit is refused too, and the session goes on.
        code, reply = client.docmd("NOOP", "x" * 2000)
        assert (code, reply) == (500, b"Command line too long")
        assert client.noop()[0] == 250
    assert queued(store) == 2


def test_the_line_length_limit_is_configurable(listen, store) -> None:  # type: ignore[no-untyped-def]
    intake = listen(max_line_length=5000)
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.sendmail("jan@example.org", [HELPDESK], mail_with_line(5000))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("jan@example.org", [HELPDESK], mail_with_line(5002))
    assert refused.value.smtp_code == 500
    assert queued(store) == 1


def test_recipients_past_the_limit_get_452(listen, store) -> None:  # type: ignore[no-untyped-def]
    intake = listen(max_recipients=2)
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("jan@example.org")
        codes = [client.rcpt(r)[0] for r in (HELPDESK, "escalations@example.com", HELPDESK)]
        assert codes == [250, 250, 452]
        assert client.data(make_mail())[0] == 250  # delivered to the first two
    assert queued(store) == 1


# --- connections, timeouts ----------------------------------------------------------------


def test_the_connection_over_the_per_client_limit_gets_421(listen) -> None:  # type: ignore[no-untyped-def]
    intake = listen(max_connections_per_client=3)
    with ExitStack() as stack:
        held = [stack.enter_context(smtplib.SMTP("127.0.0.1", intake.port)) for _ in range(3)]
        for client in held:
            assert client.noop()[0] == 250
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", intake.port)
        assert refused.value.smtp_code == 421
        held[0].quit()

        def admitted() -> bool:
            try:
                with smtplib.SMTP("127.0.0.1", intake.port) as extra:
                    return extra.noop()[0] == 250
            except smtplib.SMTPConnectError:
                return False

        wait_until(admitted, timeout=5)  # a closed connection frees its place


def test_an_idle_client_is_told_421_and_disconnected_after_the_command_timeout(listen) -> None:  # type: ignore[no-untyped-def]
    intake = listen(command_timeout_seconds=1)
    with socket.create_connection(("127.0.0.1", intake.port), timeout=10) as sock:
        assert sock.recv(1024).startswith(b"220 ")
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(1024):  # until the server closes
            received += chunk
        waited = time.monotonic() - started
    assert received.startswith(b"421 4.4.2")
    assert 0.9 <= waited < 5


def test_a_flood_that_takes_every_descriptor_as_the_listener_starts_does_not_stop_it(
    listen, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """aiosmtpd connects to a new listener once before `start` returns. When
    clients that came first have taken every file descriptor, that socket
    cannot be made; their connections have run the protocol factory, so the
    start goes on (it failed with EMFILE, and the daemon exited, in a CI run
    of the 400-connection flood under `ulimit -n 128`)."""
    real = aiosmtpd.controller.create_connection
    flood: list[socket.socket] = []

    def no_descriptor_left(address: tuple[str, int], *args: object) -> socket.socket:
        flood.append(real(address, 10))  # a client that came first
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(aiosmtpd.controller, "create_connection", no_descriptor_left)
    intake = listen()
    try:
        assert flood[0].recv(1024).startswith(b"220 ")
    finally:
        flood[0].close()
    monkeypatch.undo()
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        assert client.noop()[0] == 250


# --- never a relay ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rcpt",
    [
        "victim@elsewhere.example",
        "helpdesk@example.com.elsewhere.example",
        "helpdesk%elsewhere.example@example.com",  # the percent hack
        "elsewhere.example!helpdesk@example.com",  # bang path
        '"helpdesk@example.com"@elsewhere.example',
        "<@example.com:victim@elsewhere.example>",  # a source route
        "postmaster@example.com",  # ours by domain, but not a help desk address
    ],
)
def test_no_outside_recipient_is_ever_accepted(listen, store, rcpt: str) -> None:  # type: ignore[no-untyped-def]
    intake = listen()
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("spammer@example.net")
        code, _ = client.docmd("RCPT", f"TO:{rcpt if rcpt.startswith('<') else f'<{rcpt}>'}")
        assert code in (501, 550)
        assert client.docmd("DATA")[0] == 503  # no recipient, no message
    assert queued(store) == 0


def test_a_message_for_the_desk_and_an_outsider_reaches_only_the_desk(
    relay_app,  # type: ignore[no-untyped-def]
    relay,
) -> None:
    settings = replace(relay_app.settings, smtp=replace(relay_app.settings.smtp, port=free_port()))
    intake = SmtpIntake(settings, relay_app.store, relay_app.clock.now)
    intake.start()
    try:
        with smtplib.SMTP("127.0.0.1", intake.port) as client:
            refused = client.sendmail(
                "jan@example.org",
                [HELPDESK, "victim@elsewhere.example"],
                make_mail(to=f"{HELPDESK}, victim@elsewhere.example"),
            )
    finally:
        intake.stop()
    assert list(refused) == ["victim@elsewhere.example"]
    assert refused["victim@elsewhere.example"][0] == 550
    [(item_id, outcome)] = relay_app.inbound.drain()
    relay_app.sender.send_due()
    assert outcome.outcome == "created"
    with relay_app.store.reading() as tx:
        assert tx.inbound.get_item(item_id).envelope_to == (HELPDESK,)  # type: ignore[union-attr]
    assert relay.to("jan.kowalski@example.org"), "the requester was acknowledged"
    assert not relay.to("victim@elsewhere.example")


# --- STARTTLS and AUTH -------------------------------------------------------------------------


def users_file(tmp_path: Path, **users: str) -> Path:
    path = tmp_path / "smtp-users"
    path.write_text(
        "# first-line tools\n"
        + "".join(
            f"{user}:{hash_password(pw, scheme='pbkdf2_sha256')}\n" for user, pw in users.items()
        )
    )
    return path


def test_require_starttls_refuses_mail_in_clear_text(listen, store) -> None:  # type: ignore[no-untyped-def]
    intake = listen(tls_cert_file=str(CERT), tls_key_file=str(KEY), require_starttls=True)
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert client.mail("jan@example.org")[0] == 530
        client.starttls(context=client_tls())
        client.ehlo()
        client.sendmail("jan@example.org", [HELPDESK], make_mail())
    assert queued(store) == 1


def test_auth_is_offered_only_over_tls_and_checks_the_hashed_password(
    listen,  # type: ignore[no-untyped-def]
    store,
    tmp_path: Path,
) -> None:
    intake = listen(
        tls_cert_file=str(CERT),
        tls_key_file=str(KEY),
        auth_users_file=str(users_file(tmp_path, servicedesk="correct horse")),
        auth_required=True,
    )
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        assert not client.has_extn("auth")  # never in clear text
        assert client.docmd("AUTH", "PLAIN AGZvbwBiYXI=")[0] == 538
        assert client.mail("sd@example.com")[0] == 530  # AUTH first
        client.starttls(context=client_tls())
        client.ehlo()
        assert client.has_extn("auth")
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            client.login("servicedesk", "Correct horse")
        assert wrong.value.smtp_code == 535
        client.login("servicedesk", "correct horse")
        client.sendmail("sd@example.com", ["escalations@example.com"], make_mail())
    assert queued(store) == 1


def test_repeated_auth_failures_close_the_connection(listen, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    intake = listen(auth_users_file=str(users_file(tmp_path, tool="pw")), auth_allow_plaintext=True)
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        codes = [client.docmd("AUTH", "PLAIN AHRvb2wAd3Jvbmc=")[0] for _ in range(5)]
        assert codes == [535] * 5
        assert client.docmd("AUTH", "PLAIN AHRvb2wAd3Jvbmc=")[0] == 421
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


def test_auth_in_clear_text_when_explicitly_allowed(listen, store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    intake = listen(
        auth_users_file=str(users_file(tmp_path, tool="s3cret")),
        auth_required=True,
        auth_allow_plaintext=True,
    )
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        assert client.has_extn("auth")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("nobody", "s3cret")  # an unknown user is refused alike
        client.login("tool", "s3cret")
        client.sendmail("sd@example.com", [HELPDESK], make_mail())
    assert queued(store) == 1


def test_without_users_no_auth_is_offered_even_over_tls(listen) -> None:  # type: ignore[no-untyped-def]
    intake = listen(tls_cert_file=str(CERT), tls_key_file=str(KEY))
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.starttls(context=client_tls())
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN AHRvb2wAd3Jvbmc=")[0] == 535


def test_a_certificate_that_does_not_load_is_a_configuration_error(
    tmp_path: Path, sqlite_url: str, store: SqlStore
) -> None:
    from daemon.core.errors import ConfigError

    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    settings = listener_settings(
        tmp_path, sqlite_url, tls_cert_file=str(bad), tls_key_file=str(KEY)
    )
    with pytest.raises(ConfigError) as refused:
        SmtpIntake(settings, store, lambda: datetime.now(UTC))
    assert "smtp.tls_cert_file" in refused.value.problems[0]
