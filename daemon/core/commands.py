"""Agent command lines at the top of a reply (SPEC §4), parsed and checked.

An agent works a ticket from their mail client by starting a reply with lines like
`#assign me` or `#resolve fixed`. This module turns such a body into commands with
normalised arguments plus the text after them, and lists every problem at once:
the caller applies a block only when it has no errors, so nothing is applied in
part and the agent learns everything wrong in one answer. Whether a command is
allowed for this ticket now (lifecycle, known groups and agents) is the caller's
check; this one is about what the agent wrote.

Decisions where SPEC is silent:

- Blank lines between command lines do not end the block: mail clients that write
  HTML turn each line into a paragraph, and a command cut off by a blank line
  would otherwise be mailed to the requester as text.
- Command names are case-insensitive; `#Name: arg` and `#name=arg` work too.
- `#priority` takes P1..P5 or the bare digit; `#impact`/`#urgency` take H/M/L,
  high/medium/low and the Polish forms (wysoki/wysoka/wysokie, średni..., niski...,
  also typed without diacritics). `#status` takes the ticket state names, with
  spaces or hyphens for the underscore ("in progress").
- `#assign` takes one address (also inside `Name <addr>` or an Outlook
  `addr <mailto:addr>` link), or `me`, which the caller resolves to the sender.
- `#resolve` takes one code word, and needs a note below the commands (the
  resolution note is what the requester is sent). Commands without argument
  refuse one, so "#cancel duplicate of HD-41" is not silently half-read.
- One reply changes the status at most once: `#status`, `#pending`, `#resolve`,
  `#close`, `#cancel`, `#reopen` and `#merge` exclude each other, except
  `#resolve` with `#close` (an agent who verified the fix by phone: resolve, then
  close). `#merge` goes alone, or with `#internal`. `#workaround` (SPEC §8)
  needs its text below the commands (it is mailed to the requester) and goes
  with neither `#internal` nor a command that resolves, closes, cancels,
  reopens or sets the status; `#pending` may join it. `#internal` with `#resolve`
  is a conflict: the text below cannot be both. The same command twice with the
  same argument counts once; with different arguments it is a conflict.
- `#link HD-N` makes the ticket part of the major incident HD-N; `#unlink`
  (no argument) undoes it; the two together are a conflict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from daemon.core.domain import MAX_TICKET_NUMBER, Status
from daemon.core.text import own_text


@dataclass(frozen=True, slots=True)
class Command:
    """One command line: canonical name (no `#`), normalised argument, 1-based line."""

    name: str
    arg: str | None
    line: int
    raw: str


@dataclass(frozen=True, slots=True)
class CommandError:
    """Why one line of the block cannot be obeyed.

    `code` is one of unknown, missing_argument, bad_argument, unexpected_argument,
    conflict, missing_note: for wording the answer in the agent's language.
    """

    line: int
    raw: str
    reason: str
    code: str = "bad_argument"


@dataclass(frozen=True, slots=True)
class CommandBlock:
    """The commands at the top of a body, the text after them, and every error."""

    commands: tuple[Command, ...]
    rest: str
    errors: tuple[CommandError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    def get(self, name: str) -> Command | None:
        """The command of that name, if the block has it."""
        return next((c for c in self.commands if c.name == name), None)

    def has(self, name: str) -> bool:
        return self.get(name) is not None


# --- arguments --------------------------------------------------------------------------


class _BadArgument(ValueError):
    pass


_ADDRESS = re.compile(r"[^\s<>@,;:\"()\[\]]+@[^\s<>@,;:\"()\[\]]+")

# Polish in every gender (wpływ wysoki, pilność wysoka, ...), also as typed on a
# keyboard without Polish letters.
_LEVELS = {
    "high": ("h", "high", "wysoki", "wysoka", "wysokie"),
    "medium": (
        *("m", "med", "medium"),
        *("średni", "średnia", "średnie", "sredni", "srednia", "srednie"),
    ),
    "low": ("l", "low", "niski", "niska", "niskie"),
}
_LEVEL_OF = {word: level for level, words in _LEVELS.items() for word in words}

_STATUS_ALIASES = {"canceled": Status.CANCELLED.value, "inprogress": Status.IN_PROGRESS.value}


def _assign(arg: str, _prefix: str) -> str:
    if arg.casefold() == "me":
        return "me"
    text = re.sub(r"(?i)mailto:", " ", arg)
    found = {m.rstrip(".").casefold() for m in _ADDRESS.findall(text)}
    if len(found) == 1:
        return found.pop()
    if found:
        raise _BadArgument("one address only")
    raise _BadArgument(f"an address like anna@example.com or 'me', not '{arg}'")


def _status(arg: str, _prefix: str) -> str:
    key = re.sub(r"[\s-]+", "_", arg.strip().casefold())
    key = _STATUS_ALIASES.get(key, key)
    if key in {s.value for s in Status}:
        return key
    names = ", ".join(s.value for s in Status)
    raise _BadArgument(f"one of {names}; not '{arg}'")


def _priority(arg: str, _prefix: str) -> str:
    m = re.fullmatch(r"[pP]?\s*([1-5])", arg.strip())
    if m:
        return f"P{m.group(1)}"
    raise _BadArgument(f"P1, P2, P3, P4 or P5, not '{arg}'")


def _level(arg: str, _prefix: str) -> str:
    level = _LEVEL_OF.get(arg.strip().casefold())
    if level:
        return level
    raise _BadArgument(f"H, M or L (high, medium, low; wysoki, średni, niski), not '{arg}'")


def _name(arg: str, _prefix: str) -> str:
    return " ".join(arg.split())


def _code(arg: str, _prefix: str) -> str:
    if re.fullmatch(r"[\w.-]+", arg):
        return arg
    raise _BadArgument(
        f"one resolution code word (like #resolve fixed), not '{arg}'; "
        "write the resolution note below the commands"
    )


_DIGITS = len(str(MAX_TICKET_NUMBER))


def _ticket(arg: str, prefix: str) -> str:
    # Digits bounded in the pattern: a longer number names no ticket, and
    # int() of thousands of digits raises.
    pattern = rf"\[?\s*(?:{re.escape(prefix)}\s*-?\s*)?0*(\d{{1,{_DIGITS}}})\s*\]?"
    m = re.fullmatch(pattern, arg.strip(), re.IGNORECASE)
    if m and int(m.group(1)) > 0:
        return str(int(m.group(1)))
    raise _BadArgument(f"the ticket that stays, like {prefix}-42, not '{arg}'")


def _parent(arg: str, prefix: str) -> str:
    try:
        return _ticket(arg, prefix)
    except _BadArgument:
        raise _BadArgument(f"the major incident's ticket, like {prefix}-7, not '{arg}'") from None


_Parser = Callable[[str, str], str]

#: name -> argument parser, or None for commands that take no argument
_COMMANDS: dict[str, _Parser | None] = {
    "assign": _assign,
    "status": _status,
    "priority": _priority,
    "impact": _level,
    "urgency": _level,
    "category": _name,
    "group": _name,
    "pending": None,
    "internal": None,
    "resolve": _code,
    "close": None,
    "cancel": None,
    "reopen": None,
    "merge": _ticket,
    "workaround": None,
    "link": _parent,
    "unlink": None,
}

COMMAND_NAMES: frozenset[str] = frozenset(_COMMANDS)

_WANTS = {
    "assign": "an agent's address or 'me'",
    "status": "a state",
    "priority": "a priority P1..P5",
    "impact": "H, M or L",
    "urgency": "H, M or L",
    "category": "a category name",
    "group": "a group name",
    "resolve": "a resolution code (like #resolve fixed)",
    "merge": "the ticket that stays",
    "link": "the major incident's ticket (like #link HD-7)",
}

#: commands that change the status; one per reply, except resolve + close
_STATE_CHANGES = frozenset({"status", "pending", "resolve", "close", "cancel", "reopen", "merge"})
_COMPATIBLE = frozenset({frozenset({"resolve", "close"})})
#: `#workaround` mails its text and keeps the ticket open: these contradict it
_NOT_WITH_WORKAROUND = frozenset({"internal", "resolve", "close", "cancel", "reopen", "status"})


# --- the block --------------------------------------------------------------------------

_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"  # BOM and zero-width characters
_NAME = re.compile(r"#([^\W\d_][\w-]*)")


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    raw: str
    name: str
    arg: str | None


def _visible(line: str) -> str:
    return line.strip().strip(_INVISIBLE).strip()


def _command_line(line: str, number: int) -> _Line | None:
    """A `#` + letter line as name and argument text; None for any other line."""
    raw = _visible(line)
    m = _NAME.match(raw)
    if not m:
        return None
    arg = raw[m.end() :].lstrip(" \t:=").strip()
    return _Line(number, raw, m.group(1).casefold(), arg or None)


def _scan(body: str) -> tuple[list[_Line], str]:
    """The command lines at the top (blank lines between them skipped) and the rest."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    block: list[_Line] = []
    i = 0
    while i < len(lines):
        if _visible(lines[i]):
            parsed = _command_line(lines[i], i + 1)
            if parsed is None:
                break
            block.append(parsed)
        i += 1
    return block, "\n".join(lines[i:])


def is_command_like(body: str) -> bool:
    """True when the body starts with lines naming a known command.

    For mail from senders who may not command: their command lines are kept as
    text and recorded, so the check looks for known names only ("#hashtag" at the
    top of a requester's mail is just text).
    """
    block, _ = _scan(body)
    return any(line.name in _COMMANDS for line in block)


def _parse_line(line: _Line, tag_prefix: str) -> Command | CommandError:
    if line.name not in _COMMANDS:
        known = " ".join(f"#{n}" for n in _COMMANDS)
        return CommandError(
            line.number, line.raw, f"unknown command #{line.name} (known: {known})", "unknown"
        )
    parser = _COMMANDS[line.name]
    if parser is None:
        if line.arg is not None:
            return CommandError(
                line.number,
                line.raw,
                f"#{line.name} takes no argument; write any note below the commands",
                "unexpected_argument",
            )
        return Command(line.name, None, line.number, line.raw)
    if line.arg is None:
        return CommandError(
            line.number, line.raw, f"#{line.name} needs {_WANTS[line.name]}", "missing_argument"
        )
    try:
        arg = parser(line.arg, tag_prefix)
    except _BadArgument as exc:
        return CommandError(line.number, line.raw, f"#{line.name} needs {exc}", "bad_argument")
    return Command(line.name, arg, line.number, line.raw)


def _label(command: Command) -> str:
    return f"#{command.name}" + (f" {command.arg}" if command.arg is not None else "")


def _conflicts(commands: list[Command]) -> tuple[list[Command], list[CommandError]]:
    """Drop exact repeats; report every command that contradicts an earlier one."""
    kept: list[Command] = []
    errors: list[CommandError] = []

    def conflict(command: Command, earlier: Command, why: str) -> None:
        errors.append(
            CommandError(
                command.line,
                command.raw,
                f"{_label(command)} conflicts with {_label(earlier)} on line {earlier.line}: "
                + why,
                "conflict",
            )
        )

    for command in commands:
        same = next((k for k in kept if k.name == command.name), None)
        if same is not None:
            if same.arg != command.arg:
                conflict(command, same, f"give one #{command.name}")
            continue
        for earlier in kept:
            pair = frozenset({earlier.name, command.name})
            if "merge" in pair and pair != {"merge", "internal"}:
                conflict(command, earlier, "#merge goes alone (only #internal may join it)")
                break
            if "workaround" in pair and pair & _NOT_WITH_WORKAROUND:
                conflict(
                    command,
                    earlier,
                    "the text below is the workaround mailed to the requester; "
                    "#workaround keeps the ticket open for the permanent fix",
                )
            if pair == {"link", "unlink"}:
                conflict(command, earlier, "link or unlink, not both")
                break
            if pair == {"internal", "resolve"}:
                conflict(
                    command,
                    earlier,
                    "the text below is either an internal note or the resolution note",
                )
                break
            if pair <= _STATE_CHANGES and pair not in _COMPATIBLE:
                conflict(command, earlier, "a reply changes the status once")
                break
        kept.append(command)
    return kept, errors


def parse(body: str, tag_prefix: str = "HD") -> CommandBlock:
    """Split an agent's reply into its command block and the text after it.

    `rest` starts at the first line that is neither blank nor a command line
    (`#` followed by a letter), so "#1 ..." or "# Heading" starts the text. Line
    numbers count from 1 in `body`; `raw` is the line as written, trimmed.
    """
    block, rest = _scan(body)
    parsed = [_parse_line(line, tag_prefix) for line in block]
    commands = [p for p in parsed if isinstance(p, Command)]
    errors = [p for p in parsed if isinstance(p, CommandError)]
    commands, conflicts = _conflicts(commands)
    errors += conflicts
    resolve = next((c for c in commands if c.name == "resolve"), None)
    if resolve is not None and not own_text(rest).strip():
        errors.append(
            CommandError(
                resolve.line,
                resolve.raw,
                "#resolve needs a resolution note: describe the incident and the fix "
                "below the commands",
                "missing_note",
            )
        )
    workaround = next((c for c in commands if c.name == "workaround"), None)
    if workaround is not None and not own_text(rest).strip():
        errors.append(
            CommandError(
                workaround.line,
                workaround.raw,
                "#workaround needs the workaround below the commands: write what the "
                "requester should do to work again (it is mailed to them)",
                "missing_note",
            )
        )
    errors.sort(key=lambda e: e.line)
    return CommandBlock(tuple(commands), rest, tuple(errors))
