"""The ticket state machine: which status changes are allowed, and why not.

One table (`ALLOWED`) is the whole truth about transitions, so the mail commands,
the CLI and the scheduled jobs cannot drift apart. The helpers below it say what
an event (assignment, a reply) does to the status; the caller records the event.

Decisions where SPEC is silent (ITIL v4 incident management):

- A ticket is closed only after it is resolved: closure confirms a resolution,
  and resolving is what records the resolution code and note the requester is
  sent. An agent who verified a fix by phone resolves and closes in one go
  (`#resolve CODE` + `#close`), never closes an unresolved ticket.
- Any open state may go straight to resolved (an agent may solve a new ticket at
  once) or to pending (an agent's first reply may be a question).
- `new` is reached only by opening a ticket or reopening one without assignee;
  `assigned` only from `new` (reassigning a ticket in work keeps its status).
- `cancelled` is final: a cancelled request that turns out to be needed after
  all is a new ticket. Reopening is from resolved and closed only.
- A "transition" to the current state is refused (code "unchanged"); callers
  that treat repeats as no-ops compare before calling `check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from daemon.core.domain import OPEN_STATES, Status

_S = Status

ALLOWED: Mapping[Status, frozenset[Status]] = MappingProxyType(
    {
        _S.NEW: frozenset({_S.ASSIGNED, _S.IN_PROGRESS, _S.PENDING, _S.RESOLVED, _S.CANCELLED}),
        _S.ASSIGNED: frozenset({_S.IN_PROGRESS, _S.PENDING, _S.RESOLVED, _S.CANCELLED}),
        _S.IN_PROGRESS: frozenset({_S.PENDING, _S.RESOLVED, _S.CANCELLED}),
        _S.PENDING: frozenset({_S.IN_PROGRESS, _S.RESOLVED, _S.CANCELLED}),
        # reopen (to in_progress with an assignee, else new) or verify
        _S.RESOLVED: frozenset({_S.CLOSED, _S.IN_PROGRESS, _S.NEW}),
        _S.CLOSED: frozenset({_S.IN_PROGRESS, _S.NEW}),
        _S.CANCELLED: frozenset(),
    }
)


class TransitionRefused(ValueError):
    """A status change the lifecycle does not allow.

    `str(exc)` is a sentence for the agent; `code` names the kind of refusal so a
    template can word it in the agent's language.
    """

    def __init__(self, current: Status, target: Status, code: str, reason: str) -> None:
        super().__init__(reason)
        self.current = current
        self.target = target
        self.code = code
        self.reason = reason


def is_allowed(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]


def check(current: Status, target: Status) -> None:
    """Raise `TransitionRefused` unless `current -> target` is in `ALLOWED`."""
    if is_allowed(current, target):
        return
    code, reason = _refusal(current, target)
    raise TransitionRefused(current, target, code, reason)


def _verb(target: Status) -> str:
    verbs = {_S.RESOLVED: "resolve", _S.CLOSED: "close", _S.CANCELLED: "cancel"}
    return verbs.get(target, f"set status {target}")


def _refusal(current: Status, target: Status) -> tuple[str, str]:
    """The code and the sentence for a refused change (never for an allowed one)."""
    head = f"cannot {_verb(target)}: the ticket is"
    if current == target:
        return "unchanged", f"{head} already {current}"
    if current == _S.CANCELLED:
        return "final", f"{head} cancelled, which is final; open a new ticket instead"
    if target == _S.CANCELLED:
        return "not_open", (
            f"{head} {current}; only open tickets (new, assigned, in_progress, pending) "
            "can be cancelled"
        )
    if current in (_S.RESOLVED, _S.CLOSED):
        return "reopen_first", f"{head} {current}; reopen it first"
    if target == _S.CLOSED:
        return "resolve_first", (
            f"{head} {current}; resolve it first with a resolution code and note "
            "(closure follows resolution)"
        )
    if target == _S.NEW:
        return "backwards", (
            f"{head} {current}; a ticket is new only until it is assigned or worked on"
        )
    # only in_progress/pending -> assigned is left
    return "backwards", (
        f"{head} {current}, so work has started; assign it to someone else instead "
        "(the status stays)"
    )


def reopen_target(has_assignee: bool) -> Status:
    """Where a reopened ticket goes: back to its assignee's work, or to the queue."""
    return _S.IN_PROGRESS if has_assignee else _S.NEW


def on_assign(current: Status) -> Status:
    """Status after an assignment: a new ticket becomes assigned; others keep theirs."""
    return _S.ASSIGNED if current == _S.NEW else current


def on_agent_reply(current: Status, pending: bool = False) -> Status:
    """Status after an agent's public reply.

    Work has visibly started, so new/assigned become in_progress. Pending pauses
    the SLA clock, so it must be chosen on each reply: with `pending` (the reply
    carried `#pending`) an open ticket becomes or stays pending, without it a
    pending ticket resumes. Resolved, closed and cancelled tickets keep their
    status: a reply does not reopen them.
    """
    if current not in OPEN_STATES:
        return current
    return _S.PENDING if pending else _S.IN_PROGRESS


def on_requester_reply(current: Status) -> Status:
    """Status after the requester answered: the wait is over for a pending ticket.

    Resolved and closed tickets are the verification's business, not this one's.
    """
    return _S.IN_PROGRESS if current == _S.PENDING else current
