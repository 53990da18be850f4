"""`spocd record TICKET [--format text|html|json] [--output FILE]`: the
complete incident record (SPEC §8), built by `daemon.app.record` and laid
out by `daemon.adapters.record_page`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from daemon.adapters.record_page import render_html, render_text
from daemon.app import record
from daemon.cli.main import EX_DATAERR, EX_OK, open_app, ticket_number
from daemon.core.record import CLIENT, DESK

EX_CANTCREAT = 73


def cmd_record(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        rt = app.runtime
        number = ticket_number(args.ticket, rt.prefix)
        desk = rt.settings.helpdesk
        with app.store.reading() as tx:
            found = record.load(
                tx,
                rt.rules,
                number,
                app.clock.now(),
                prefix=rt.prefix,
                desk_name=desk.name,
                desk_address=desk.address,
                timezone=desk.timezone,
                audience=CLIENT if args.client else DESK,
            )
    finally:
        app.close()
    if found is None:
        print(f"spocd: no ticket {rt.ticket_id(number)}", file=sys.stderr)
        return EX_DATAERR
    if args.format == "json":
        out = json.dumps(record.record_json(found), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "html":
        out = render_html(found)
    else:
        out = render_text(found)
    if args.output:
        try:
            Path(args.output).write_text(out, encoding="utf-8")
        except OSError as exc:
            print(f"spocd: cannot write {args.output}: {exc}", file=sys.stderr)
            return EX_CANTCREAT
    else:
        sys.stdout.write(out)
        sys.stdout.flush()
    return EX_OK
