"""Build realistic test messages as bytes."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

_counter = 0


def make_mail(
    *,
    sender: str = "jan.kowalski@example.org",
    to: str = "helpdesk@example.com",
    subject: str = "Printer on floor 2 does not print",
    body: str = "Hello,\nthe printer shows a paper jam but there is no paper inside.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    cc: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
) -> bytes:
    """A plain mail as a mail client would send it; every field overridable."""
    global _counter
    _counter += 1
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(email.utils.localtime())
    msg["Message-ID"] = (
        f"<{message_id}>"
        if message_id
        else email.utils.make_msgid(idstring=f"t{_counter}", domain="client.example.org")
    )
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()
