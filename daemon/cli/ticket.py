"""`spocd ticket TICKET ACTION ...`: the agent's actions from the shell.

The same functions as the mail commands, with the same checks and events;
the actor's channel is "cli". A refused action changes nothing (exit 65).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mimetypes
import os
import sys
from pathlib import Path

from daemon.app import actions, closure, major, restoration
from daemon.app.actions import ActionRefused, Ctx
from daemon.app.tickets import Actor, outgoing_plan
from daemon.app.views import ticket_json
from daemon.cli.main import EX_DATAERR, EX_OK, UsageError, open_app, ticket_number
from daemon.core.domain import Attachment
from daemon.mail import attachparts
from daemon.mail.parts import safe_filename

#: Who acts when `--as` is not given (else the lead of the ticket's group).
AGENT_ENV = "SPOCD_AGENT"


def _text(args: argparse.Namespace, what: str) -> str:
    value = " ".join(args.args).strip()
    if not value:
        raise UsageError(f"ticket {args.action} needs {what}")
    return value


def _run(ctx: Ctx, args: argparse.Namespace) -> None:
    action = args.action
    if action == "assign":
        actions.assign(ctx, _text(args, "an agent's address (or me)"))
    elif action == "status":
        actions.set_status(ctx, _state(_text(args, "a state")))
    elif action == "priority":
        actions.set_priority(ctx, _text(args, "P1..P5").upper())
    elif action in ("impact", "urgency"):
        actions.set_level(ctx, action, _text(args, "high, medium or low").lower())
    elif action == "category":
        actions.set_category(ctx, _text(args, "a category"))
    elif action == "group":
        actions.set_group(ctx, _text(args, "a group"))
    elif action == "reply":
        text = _text(args, "the text of the reply")
        files = _files(args.attach)
        plan = outgoing_plan(ctx.rt, attachparts.items_of([None] * len(files), files, None))
        actions.reply(ctx, text, attachments=plan, files=files)
        major.fan_out_public(ctx, "agent_reply", text, attachments=plan)
    elif action == "workaround":
        text = (args.note or " ".join(args.args)).strip()
        if not text:
            raise UsageError(
                "ticket workaround needs --note TEXT: what the requester should do to "
                "work again (it is mailed to them)"
            )
        files = _files(args.attach)
        plan = outgoing_plan(ctx.rt, attachparts.items_of([None] * len(files), files, None))
        restoration.workaround(ctx, text, attachments=plan, files=files)
    elif action == "note":
        actions.note(ctx, _text(args, "the text of the note"))
    elif action == "pending":
        actions.pending(ctx)
    elif action == "resolve":
        if not args.code or not (args.note or args.args):
            raise UsageError("ticket resolve needs --code CODE and --note TEXT")
        note = args.note or " ".join(args.args)
        closure.resolve(ctx, args.code, note)
        major.resolve_children(ctx, args.code, note)
    elif action == "close":
        closure.close(ctx, args.note or (" ".join(args.args) or None))
    elif action == "cancel":
        closure.cancel(ctx, args.note or (" ".join(args.args) or None))
    elif action == "reopen":
        closure.reopen(ctx, args.note or (" ".join(args.args) or None), notify=True)
    elif action == "merge":
        ctx.ticket = closure.merge(ctx, ticket_number(_text(args, "a ticket"), ctx.rt.prefix))
    elif action == "link":
        major.link(ctx, ticket_number(_text(args, "the major incident's ticket"), ctx.rt.prefix))
    elif action == "unlink":
        major.unlink(ctx)


def _files(paths: list[str]) -> list[Attachment]:
    """The files of `reply --attach`, read whole, named by their base name
    (made safe as mail names are); a missing file is a usage error."""
    found = []
    for n, path in enumerate(paths, 1):
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        name = safe_filename(Path(path).name, n, "application/octet-stream")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        found.append(Attachment(name, ctype, len(data), hashlib.sha256(data).hexdigest(), data))
    return found


def _state(text: str) -> str:
    state = text.strip().lower().replace(" ", "_").replace("-", "_")
    valid = ("new", "assigned", "in_progress", "pending", "resolved", "closed", "cancelled")
    if state not in valid:
        raise UsageError(f"unknown state {text!r}; one of {', '.join(valid)}")
    return state


def cmd_ticket(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        rt = app.runtime
        number = ticket_number(args.ticket, rt.prefix)
        now = app.clock.now()
        try:
            with app.store.transaction() as tx:
                ticket = tx.tickets.get(number, for_update=True)
                if ticket is None:
                    print(f"spocd: no ticket {rt.ticket_id(number)}", file=sys.stderr)
                    return EX_DATAERR
                chosen = args.actor or os.environ.get(AGENT_ENV, "").strip()
                actor = (chosen or rt.group_lead(ticket.group) or "admin").lower()
                if chosen and not rt.is_agent(actor):
                    raise ActionRefused(f"{actor} is not an agent in rules.yaml")
                ctx = Ctx(tx, rt, now, Actor(actor, "cli"), ticket)
                _run(ctx, args)
                ctx.save()
                data = ticket_json(ctx.ticket, rt.prefix, rt.rules, now)
        except ActionRefused as exc:
            print(f"spocd: refused: {exc}", file=sys.stderr)
            return EX_DATAERR
        app.sender.send_due()
    finally:
        app.close()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(
            f"{data['id']}: {args.action} done; status {data['status']}, "
            f"priority {data['priority']}, assignee {data['assignee'] or '-'}"
        )
    return EX_OK
