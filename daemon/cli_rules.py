"""`spocd rules check|test`: validate rules.yaml, or show what it would decide."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from daemon import rules
from daemon.cli import EX_DATAERR, EX_OK, settings_of
from daemon.errors import ConfigError, NotMail
from daemon.parsing import parse_message
from daemon.service import load_rules_file, resolve_paths


def _rules_path(args: argparse.Namespace) -> Path:
    if getattr(args, "file", None):
        return Path(args.file)
    return resolve_paths(settings_of(args))[0]


def cmd_rules(args: argparse.Namespace) -> int:
    path = _rules_path(args)
    try:
        compiled = load_rules_file(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s); rules refused", file=sys.stderr)
        return EX_DATAERR
    if args.rules_command == "check":
        print(
            f"{path}: ok (version {compiled.version}, {len(compiled.rules)} rules, "
            f"{len(compiled.groups)} groups)"
        )
        return EX_OK
    try:
        raw = sys.stdin.buffer.read() if args.message == "-" else Path(args.message).read_bytes()
        msg = parse_message(raw)
    except OSError as exc:
        print(f"{args.message}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EX_DATAERR
    except NotMail as exc:
        print(f"{args.message}: not mail: {exc}", file=sys.stderr)
        return EX_DATAERR
    channel = "escalation" if args.escalation else "email"
    decision = rules.decide(compiled, msg, channel)
    if args.json:
        print(json.dumps(decision.to_json(), ensure_ascii=False, indent=2))
    else:
        print(decision.format_text())
    return EX_OK
