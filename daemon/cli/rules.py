"""`spocd rules check|test`: validate rules.yaml, or show what it would decide."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from daemon.adapters.templates import TemplateRenderer
from daemon.app.views import printable
from daemon.cli.main import EX_DATAERR, EX_OK, settings_of
from daemon.core.errors import ConfigError, NotMail
from daemon.mail import forwards
from daemon.mail.parsing import parse_message
from daemon.rules import ruleset as rules
from daemon.service.desk_files import load_rules_file, resolve_paths


def _rules_path(args: argparse.Namespace) -> Path:
    if getattr(args, "file", None):
        return Path(args.file)
    return resolve_paths(settings_of(args))[0]


def _templates_ok(args: argparse.Namespace) -> bool:
    """The configured templates as every command loads them (each file
    compiled, each include found), each problem on stderr: `rules check`
    is what an admin runs after an edit, before a reload refuses it."""
    settings = settings_of(args)
    templates = resolve_paths(settings)[1]
    try:
        found = TemplateRenderer(templates, settings.helpdesk.timezone).problems()
    except OSError as exc:  # no en/ folder, or one that cannot be read
        found = [f"{templates}: {exc.strerror or exc}"]
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"{templates}: {len(found)} problem(s); templates refused", file=sys.stderr)
    else:
        print(f"{templates}: ok")
    return not found


def cmd_rules(args: argparse.Namespace) -> int:
    path = _rules_path(args)
    # With no FILE, the desk's configuration is checked: its templates too.
    desk = args.rules_command == "check" and not args.file
    try:
        compiled = load_rules_file(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s); rules refused", file=sys.stderr)
        if desk:
            _templates_ok(args)
        return EX_DATAERR
    if args.rules_command == "check":
        for warning in compiled.warnings:
            print(f"{path}: warning: {warning}", file=sys.stderr)
        counts = [(len(compiled.rules), "rule"), (len(compiled.groups), "group")]
        counts += [(len(compiled.contracts), "contract")] if compiled.contracts else []
        listed = ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts)
        print(f"{path}: ok (version {compiled.version}, {listed})")
        return EX_OK if not desk or _templates_ok(args) else EX_DATAERR
    parse = functools.partial(
        parse_message, max_attachment_bytes=settings_of(args).limits.max_attachment_bytes
    )
    try:
        raw = sys.stdin.buffer.read() if args.message == "-" else Path(args.message).read_bytes()
        msg = parse(raw)
    except OSError as exc:
        print(f"{args.message}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EX_DATAERR
    except NotMail as exc:
        print(f"{args.message}: not mail: {exc}", file=sys.stderr)
        return EX_DATAERR
    if not args.escalation:
        decision = rules.decide(compiled, msg, "email")
        print(
            json.dumps(decision.to_json(), ensure_ascii=False, indent=2)
            if args.json
            else decision.format_text()
        )
        return EX_OK
    # As the pipeline reads an escalation: the rules decide on the forwarded
    # incident, so the requester's domain, not first line's, sets the language.
    escalation = forwards.escalation(msg, parse)
    decision = rules.decide(
        compiled, escalation.incident, "escalation", requester=escalation.requester or None
    )
    found = {
        "escalated_by": escalation.by,
        "requester": escalation.requester,
        "requester_found": escalation.found,
        "forward_style": escalation.forwarded.style,
    }
    if args.json:
        print(json.dumps({**decision.to_json(), "escalation": found}, ensure_ascii=False, indent=2))
    else:
        how = (
            f"the original sender, {escalation.forwarded.style} forward"
            if escalation.found
            else "not found in the forward: first line is the requester"
        )
        print(
            printable(
                f"escalated: by {escalation.by or '-'}\n"
                f"requester: {escalation.requester or '-'} ({how})"
            )
        )
        print(decision.format_text())
    return EX_OK
