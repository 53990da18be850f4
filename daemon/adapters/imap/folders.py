"""The server's side of folder names: its hierarchy delimiter and personal
namespace, asked once per connection, and the target folders created (and
subscribed) when missing, so a fresh mailbox needs no setup by hand."""

from __future__ import annotations

import logging
from typing import Any

from imapclient import IMAPClient

log = logging.getLogger("spocd.imap")


def hierarchy(client: Any) -> tuple[str | None, str]:
    """The server's hierarchy delimiter and personal namespace prefix."""
    prefix, delimiter = "", None
    if client.has_capability("NAMESPACE"):
        personal = client.namespace().personal
        if personal:
            prefix, sep = personal[0]
            delimiter = sep if sep else None
    if delimiter is None:
        listed = client.list_folders("", "")
        if listed and listed[0][1]:
            delimiter = listed[0][1]
    if isinstance(delimiter, bytes):
        delimiter = delimiter.decode()
    return delimiter, prefix or ""


def ensure_folder(client: Any, name: str, fields: dict[str, Any]) -> None:
    """Create (and subscribe) a folder the messages are moved to, unless it is there."""
    if client.folder_exists(name):
        return
    try:
        client.create_folder(name)
    except IMAPClient.Error:
        if not client.folder_exists(name):  # another instance made it
            raise
    try:
        client.subscribe_folder(name)  # so mail clients show it
    except IMAPClient.Error:
        log.debug("could not subscribe %s", name)
    log.info("imap folder created", extra={**fields, "new_folder": name})
