"""The `spocd` command line.

Heavy imports (SQLAlchemy, aiosmtpd, the pipeline) happen inside the commands
that need them, so `spocd ingest --queue-only -` from an MTA pipe starts fast.
Exit codes follow sysexits.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from daemon.config import Settings, find_config, load_settings
from daemon.core.domain import MAX_TICKET_NUMBER
from daemon.core.errors import ConfigError

if TYPE_CHECKING:
    from daemon.rules.ruleset import Rules

EX_OK, EX_USAGE, EX_DATAERR, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = 0, 64, 65, 70, 75, 78
EX_SIGPIPE = 128 + 13  # what a shell reports for a tool ended by SIGPIPE
#: How far ahead of the wall clock `--now` may act on live tickets without --force.
FUTURE_SLACK = timedelta(hours=24)
#: Deadlines and reminders are computed this far past a moment; the calendar ends in 9999.
_HORIZON = timedelta(days=100 * 366)


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


if TYPE_CHECKING:
    from typing import TypeAlias

    _Subparsers: TypeAlias = argparse._SubParsersAction[Parser]


#: The database's integers are 64-bit: a larger id names no row (and SQLite
#: raises on it instead of finding nothing).
_MAX_ROW_ID = 2**63 - 1


def row_id(text: str) -> int:
    """A row's id as given on the command line (`queue retry 17`)."""
    digits = text.strip()
    if not digits.isdecimal() or len(digits) > len(str(_MAX_ROW_ID)):
        raise argparse.ArgumentTypeError(f"not an id: {text!r}")
    number = int(digits)
    if not 0 < number <= _MAX_ROW_ID:
        raise argparse.ArgumentTypeError(f"not an id: {text!r}")
    return number


def parse_moment(text: str) -> datetime:
    """ISO 8601; a moment without offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 moment: {text!r}") from exc
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC) + _HORIZON
    except OverflowError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is too far in the future: deadlines after it would pass the year 9999"
        ) from None
    return moment


def future_now_problem(now: datetime, wall: datetime, has_tickets: bool) -> str | None:
    """Why a `--now` must not act on this database, or None. A moment far ahead
    would fire every escalation and move every status update there for good."""
    if not has_tickets or now - wall <= FUTURE_SLACK:
        return None
    return (
        f"--now {now.isoformat()} is {now - wall} ahead of the wall clock "
        f"({wall.isoformat(timespec='seconds')}); on a database with tickets it would fire "
        "their escalations and move their status updates there. Use --force to act anyway"
    )


def _common(
    p: argparse.ArgumentParser, *, now: bool = False, json: bool = False, writes: bool = False
) -> None:
    p.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="configuration file (default: $SPOCD_CONFIG or ./spocd.toml)",
    )
    if now:
        p.add_argument(
            "--now",
            type=parse_moment,
            default=argparse.SUPPRESS,
            metavar="ISO8601",
            help="act as if at this moment",
        )
    if json:
        p.add_argument("--json", action="store_true", help="output for programs")
    if writes:
        p.add_argument(
            "--force",
            action="store_true",
            help="act with a --now more than 24 hours ahead on a database with tickets",
        )


def build_parser(command: str | None = None) -> Parser:
    """With `command` one of the commands, the parser of that command alone:
    a command line needs only its own, and building all seventeen took 9-14 ms
    of every start. Without one (`spocd --help`, a misspelt command), all."""
    parser = Parser(prog="spocd", description="Email-driven IT service desk daemon.")
    _common(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in [command] if command in _PARSERS else _PARSERS:
        _PARSERS[name](sub)
    return parser


#: How each command's parser is added to the subparsers, in `--help`'s order.
_PARSERS: dict[str, Callable[[_Subparsers], None]] = {}


def _command(add: Callable[[_Subparsers], None]) -> Callable[[_Subparsers], None]:
    _PARSERS[add.__name__.removeprefix("_add_")] = add
    return add


@_command
def _add_run(sub: _Subparsers) -> None:
    p = sub.add_parser("run", help="run the daemon in the foreground")
    _common(p)


@_command
def _add_init(sub: _Subparsers) -> None:
    p = sub.add_parser("init", help="write starter spocd.toml, rules.yaml and templates")
    p.add_argument("dir", nargs="?", default=".")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    _common(p)


@_command
def _add_ingest(sub: _Subparsers) -> None:
    p = sub.add_parser("ingest", help="ingest mail once (.eml, -, mbox, Maildir)")
    p.add_argument("paths", nargs="*", default=["-"], metavar="PATH")
    p.add_argument("--escalation", action="store_true", help="first-line escalations")
    p.add_argument(
        "--queue-only",
        action="store_true",
        help="store durably and leave the rest to the running daemon",
    )
    _common(p, now=True, json=True, writes=True)


@_command
def _add_tick(sub: _Subparsers) -> None:
    p = sub.add_parser("tick", help="process the queue, run due jobs, send due mail, exit")
    _common(p, now=True, json=True, writes=True)


@_command
def _add_tickets(sub: _Subparsers) -> None:
    p = sub.add_parser("tickets", help="list tickets")
    p.add_argument("--status", default="open", help="a state, 'open' or 'all'")
    _common(p, now=True, json=True)


@_command
def _add_show(sub: _Subparsers) -> None:
    p = sub.add_parser("show", help="one ticket with its messages and events")
    p.add_argument("ticket")
    _common(p, now=True, json=True)


@_command
def _add_ticket(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "ticket",
        help="act on a ticket as an agent",
        description=(
            "Act on a ticket as an agent. spocd acts as the lead of the ticket's group "
            "unless --as ADDRESS (or the environment variable SPOCD_AGENT) names another "
            "agent; a reply is signed with that agent's name from rules.yaml."
        ),
    )
    p.add_argument("ticket")
    p.add_argument(
        "action",
        choices=[
            "assign",
            "status",
            "priority",
            "impact",
            "urgency",
            "category",
            "group",
            "reply",
            "note",
            "pending",
            "resolve",
            "close",
            "cancel",
            "reopen",
            "merge",
            "workaround",
            "link",
            "unlink",
        ],
    )
    p.add_argument("args", nargs="*", help="the action's argument (an agent, a state, text)")
    p.add_argument(
        "--as",
        dest="actor",
        metavar="ADDRESS",
        help="the agent who acts and signs a reply (default: $SPOCD_AGENT, "
        "else the lead of the ticket's group)",
    )
    p.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="a file the reply carries (repeatable)",
    )
    p.add_argument("--code", help="resolution code (resolve)")
    p.add_argument(
        "--note",
        help="resolution note (resolve), the workaround mailed to the requester "
        "(workaround) or a note (close, cancel)",
    )
    _common(p, now=True, json=True, writes=True)


@_command
def _add_record(sub: _Subparsers) -> None:
    p = sub.add_parser("record", help="the complete incident record of a ticket (SPEC §8)")
    p.add_argument("ticket")
    p.add_argument("--format", choices=["text", "html", "json"], default="text")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--client", action="store_true", help="as the client gets it: no internal notes")
    _common(p, now=True)


@_command
def _add_attachment(sub: _Subparsers) -> None:
    p = sub.add_parser("attachment", help="write one stored attachment's bytes")
    p.add_argument("ticket")
    p.add_argument("id", help="the attachment's id (spocd show lists them)")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    _common(p)


@_command
def _add_report(sub: _Subparsers) -> None:
    p = sub.add_parser("report", help="KPIs: counts, SLA compliance, response and resolution times")
    p.add_argument(
        "--since", metavar="D", help="start: ISO date or moment (default: 30 days before --until)"
    )
    p.add_argument(
        "--until", metavar="D", help="end: ISO date (inclusive) or moment (default: now)"
    )
    p.add_argument("--csv", action="store_true", help="KPI rows as CSV for spreadsheets")
    p.add_argument("--contract", metavar="ID", help="only the tickets of this contract")
    p.add_argument(
        "--mail", action="store_true", help="mail the contract's KPI report now (with --contract)"
    )
    _common(p, now=True, json=True)


@_command
def _add_contracts(sub: _Subparsers) -> None:
    p = sub.add_parser("contracts", help="contracts with their open tickets and SLA states")
    _common(p, now=True, json=True)


@_command
def _add_db(sub: _Subparsers) -> None:
    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True, parser_class=Parser)
    q = dbsub.add_parser("upgrade", help="apply database migrations")
    _common(q)
    q = dbsub.add_parser("copy", help="copy every row to another (empty) database and verify")
    q.add_argument("source", metavar="SRC", help="database URL to copy from")
    q.add_argument("target", metavar="DST", help="database URL to copy to (must be empty)")
    _common(q)
    _common(p)


@_command
def _add_rules(sub: _Subparsers) -> None:
    p = sub.add_parser("rules", help="check or try out rules.yaml")
    rsub = p.add_subparsers(dest="rules_command", required=True, parser_class=Parser)
    q = rsub.add_parser("check", help="validate rules (the configured file, or FILE)")
    q.add_argument("file", nargs="?")
    _common(q)
    q = rsub.add_parser("test", help="what the rules would decide for a message")
    q.add_argument("message", metavar="MESSAGE.eml")
    q.add_argument(
        "--escalation",
        action="store_true",
        help="read it as a first-line escalation: decide on the forwarded incident and its sender",
    )
    _common(q, json=True)
    _common(p)


@_command
def _add_bench(sub: _Subparsers) -> None:
    sub.add_parser(
        "bench", help="measure throughput and memory on a synthetic load (spocd bench --help)"
    )


@_command
def _add_passwd(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "passwd",
        help="print a `user:hash` line for the SMTP AUTH users file ([smtp] auth_users_file)",
    )
    p.add_argument("user")
    p.add_argument("--scheme", choices=["scrypt", "pbkdf2_sha256"], default="scrypt")


@_command
def _add_status(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "status",
        help="mailbox health, queue depth, outbox; exit 0 when healthy, 1 when not",
        description="Exit 0 when every enabled IMAP mailbox had a success within 3 "
        "of its poll intervals, else 1.",
    )
    _common(p, json=True)


@_command
def _add_queue(sub: _Subparsers) -> None:
    p = sub.add_parser("queue", help="the inbound queue: failed and quarantined mail")
    p.add_argument("action", choices=["list", "retry", "raw"])
    p.add_argument("ids", nargs="*", type=row_id)
    p.add_argument("--state", default="failed,quarantined")
    _common(p, now=True, json=True, writes=True)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    config, rest = _without_config(words)
    if rest[:1] == ["bench"]:  # its own options; it builds its own temporary setups
        from daemon.cli.bench.load import main as bench

        if config is not None:  # taken like everywhere else: a bad config is refused
            try:
                load_settings(Path(config))
            except ConfigError as exc:
                return _refused(exc)
        return bench(rest[1:])
    parser = build_parser(rest[0] if rest else None)
    args = parser.parse_args(words)
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    try:
        code = handler(args)
        sys.stdout.flush()  # here, where a closed pipe is still ours to catch
        return code
    except BrokenPipeError:
        # `spocd show HD-3 | head`: the reader has gone; stop quietly like
        # other Unix tools, and let nothing flush into the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EX_SIGPIPE
    except UsageError as exc:
        print(f"spocd: {exc}", file=sys.stderr)
        return EX_USAGE
    except ConfigError as exc:
        return _refused(exc)
    except KeyboardInterrupt:
        return 130


# --- helpers -------------------------------------------------------------------


def _refused(exc: ConfigError) -> int:
    print("spocd: configuration refused:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return EX_CONFIG


def _without_config(words: list[str]) -> tuple[str | None, list[str]]:
    """The `-c PATH` among `words` (anywhere, in any of argparse's spellings)
    and the words without it: `bench` parses its own options after it."""
    config: str | None = None
    rest: list[str] = []
    taking = False
    for word in words:
        if taking:
            config, taking = word, False
        elif word in ("-c", "--config"):
            taking = True
        elif word.startswith("--config="):
            config = word.partition("=")[2]
        elif word.startswith("-c") and not word.startswith("--"):
            config = word[2:]
        else:
            rest.append(word)
    return config, rest


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(find_config(getattr(args, "config", None), os.environ))


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    """The garbage collector paused while a command loads spocd (modules,
    rules, templates), then told to leave what was loaded alone: it lives as
    long as the process and holds no garbage worth finding, yet every full
    collection walked all of it again (40 ms of a 350 ms start), and a forked
    helper's collections copied its pages."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def open_app(
    args: argparse.Namespace, settings: Settings | None = None, rules: Rules | None = None
) -> Any:
    """The wired application, or exit 75 when the database is unreachable.
    `settings` and `rules`, when given, were read a moment before."""
    settings = settings or settings_of(args)
    now = getattr(args, "now", None)
    try:
        with _loading():
            from daemon.ports import FixedClock, SystemClock
            from daemon.service.wiring import App

            app = App(settings, FixedClock(now) if now else SystemClock(), rules=rules)
    except ConfigError:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy"):
            print(f"spocd: database unavailable: {exc}", file=sys.stderr)
            raise SystemExit(EX_TEMPFAIL) from exc
        raise
    if now and "force" in args and not args.force:
        with app.store.reading() as tx:
            has_tickets = bool(tx.tickets.listing(None, limit=1))
        problem = future_now_problem(now, SystemClock().now(), has_tickets)
        if problem:
            app.close()
            raise UsageError(problem)
    return app


def ticket_number(text: str, prefix: str) -> int:
    cleaned = text.strip().strip("[]")
    head, _, tail = cleaned.rpartition("-")
    if head and head.lower() != prefix.lower():
        raise UsageError(f"{text!r} is not a ticket of this desk ({prefix}-N)")
    digits = (tail if head else cleaned).strip().lstrip("0")
    # Checked before int(): a longer number names no ticket (and would not
    # fit the database's integer).
    if not digits.isdecimal() or len(digits) > len(str(MAX_TICKET_NUMBER)):
        raise UsageError(f"{text!r} is not a ticket id such as {prefix}-42")
    return int(digits)


# --- commands ------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.queue_only:
        return _queue_only(args)
    # Parsing and the rules first: the helpers fork with only these loaded,
    # and parse while this process loads the rest (`open_app`).
    with _loading():
        from daemon.cli.ingest import early_rules, ingest

        settings = settings_of(args)
        rules = early_rules(settings)
    return ingest(
        settings,
        rules,
        args.paths,
        lambda: open_app(args, settings, rules),
        escalation=args.escalation,
        as_json=args.json,
    )


def _queue_only(args: argparse.Namespace) -> int:
    """The MTA-pipe path: stream the bytes durably into the spool; no database
    driver loaded. Over smtp.max_message_size is exit 65 (the MTA bounces it)."""
    from daemon.cli.pipe import spool_one

    settings = settings_of(args)
    limit = settings.smtp.max_message_size
    for path in args.paths:
        try:
            source = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            return EX_DATAERR
        with source if path != "-" else contextlib.nullcontext(source):
            code = spool_one(path, source, settings.paths.spool, limit, args.escalation)
        if code != EX_OK:
            return code
    return EX_OK


def cmd_passwd(args: argparse.Namespace) -> int:
    """The password is read from the terminal (twice) or from stdin's first
    line, never from the command line, where `ps` would show it."""
    from daemon.core.passwords import USER_RE, hash_password

    if not USER_RE.match(args.user):
        raise UsageError(f"{args.user!r} is not a user name (letters, digits, ._@+-)")
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("spocd: the passwords differ", file=sys.stderr)
            return EX_DATAERR
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("spocd: empty password", file=sys.stderr)
        return EX_DATAERR
    print(f"{args.user}:{hash_password(password, scheme=args.scheme)}")
    return EX_OK


def cmd_passthrough(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), function)(args))

    return run


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ingest": cmd_ingest,
    "passwd": cmd_passwd,
    "run": cmd_passthrough("daemon.cli.commands", "cmd_run"),
    "init": cmd_passthrough("daemon.cli.commands", "cmd_init"),
    "tick": cmd_passthrough("daemon.cli.commands", "cmd_tick"),
    "tickets": cmd_passthrough("daemon.cli.commands", "cmd_tickets"),
    "show": cmd_passthrough("daemon.cli.commands", "cmd_show"),
    "attachment": cmd_passthrough("daemon.cli.commands", "cmd_attachment"),
    "record": cmd_passthrough("daemon.cli.record", "cmd_record"),
    "report": cmd_passthrough("daemon.cli.reports", "cmd_report"),
    "contracts": cmd_passthrough("daemon.cli.reports", "cmd_contracts"),
    "db": cmd_passthrough("daemon.cli.commands", "cmd_db"),
    "queue": cmd_passthrough("daemon.cli.commands", "cmd_queue"),
    "rules": cmd_passthrough("daemon.cli.rules", "cmd_rules"),
    "ticket": cmd_passthrough("daemon.cli.ticket", "cmd_ticket"),
    "status": cmd_passthrough("daemon.cli.commands", "cmd_status"),
}


if __name__ == "__main__":
    sys.exit(main())
