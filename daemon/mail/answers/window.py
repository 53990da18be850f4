"""Where the answer is: the first lines of the requester's own text.

An answer comes first and a story after it must not flip it, so only a few
lines are read, a greeting does not count as one and a sign-off ends them.
"""

from __future__ import annotations

import re

from daemon.mail.signoff import is_closing

#: How much of the own text is read: an answer comes first, a story after it
#: must not flip it.
MAX_LINES = 3
MAX_CHARS = 300


def _window(own: str) -> str:
    """The first lines of the own text that can hold an answer."""
    lines: list[str] = []
    size = 0
    for line in own.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if is_closing(stripped):
            break
        lines.append(stripped)
        size += len(stripped) + 1
        if len(lines) >= MAX_LINES + (1 if _is_greeting(lines[0]) else 0) or size >= MAX_CHARS:
            break
    joined = "\n".join(lines)
    if len(joined) > MAX_CHARS:
        joined = joined[:MAX_CHARS].rsplit(" ", 1)[0]
    return joined


_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening|day)|dzie[nń] dobry"
    r"|dobry wiecz[oó]r|cze[sś][cć]|witam|witaj|hej|szanown\w*)\b[^.!?]{0,40}[,!.:]?$",
    re.IGNORECASE,
)


def _is_greeting(line: str) -> bool:
    return bool(_GREETING.match(line))
