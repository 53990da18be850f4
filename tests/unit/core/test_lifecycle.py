"""The ticket state machine: every pair of states, and what events do to a status."""

from __future__ import annotations

import itertools

import pytest

from daemon.core import lifecycle
from daemon.core.domain import Status
from daemon.core.lifecycle import TransitionRefused

S = Status

# Rows: from; columns: to. "+" allowed; otherwise the refusal code:
# u = unchanged, f = final, r = reopen_first, c = resolve_first (close), o = not_open,
# b = backwards.
_MATRIX = """
                 new assigned in_progress pending resolved closed cancelled
    new           u      +          +        +       +       c       +
    assigned      b      u          +        +       +       c       +
    in_progress   b      b          u        +       +       c       +
    pending       b      b          +        u       +       c       +
    resolved      +      r          +        r       u       +       o
    closed        +      r          +        r       r       u       o
    cancelled     f      f          f        f       f       f       u
"""
_CODES = {
    "u": "unchanged",
    "f": "final",
    "r": "reopen_first",
    "c": "resolve_first",
    "o": "not_open",
    "b": "backwards",
}


def _pairs() -> list[tuple[Status, Status, str]]:
    header, *rows = (line.split() for line in _MATRIX.strip().splitlines())
    return [
        (S(row[0]), S(col), cell) for row in rows for col, cell in zip(header, row[1:], strict=True)
    ]


PAIRS = _pairs()


def test_matrix_covers_every_pair_once() -> None:
    assert {(a, b) for a, b, _ in PAIRS} == set(itertools.product(Status, Status))
    assert len(PAIRS) == 49


@pytest.mark.parametrize(("current", "target", "cell"), PAIRS, ids=lambda v: str(v))
def test_transition(current: Status, target: Status, cell: str) -> None:
    if cell == "+":
        lifecycle.check(current, target)
        assert lifecycle.is_allowed(current, target)
        assert target in lifecycle.ALLOWED[current]
        return
    with pytest.raises(TransitionRefused) as info:
        lifecycle.check(current, target)
    exc = info.value
    assert not lifecycle.is_allowed(current, target)
    assert exc.code == _CODES[cell]
    assert (exc.current, exc.target) == (current, target)
    assert str(exc) == exc.reason
    assert str(current) in str(exc)  # the reason names the state the ticket is in


@pytest.mark.parametrize(
    ("current", "target", "reason"),
    [
        (S.CLOSED, S.PENDING, "cannot set status pending: the ticket is closed; reopen it first"),
        (S.RESOLVED, S.RESOLVED, "cannot resolve: the ticket is already resolved"),
        (
            S.IN_PROGRESS,
            S.CLOSED,
            "cannot close: the ticket is in_progress; resolve it first with a resolution code"
            " and note (closure follows resolution)",
        ),
        (
            S.CANCELLED,
            S.IN_PROGRESS,
            "cannot set status in_progress: the ticket is cancelled, which is final;"
            " open a new ticket instead",
        ),
        (
            S.RESOLVED,
            S.CANCELLED,
            "cannot cancel: the ticket is resolved; only open tickets"
            " (new, assigned, in_progress, pending) can be cancelled",
        ),
        (
            S.PENDING,
            S.NEW,
            "cannot set status new: the ticket is pending;"
            " a ticket is new only until it is assigned or worked on",
        ),
        (
            S.IN_PROGRESS,
            S.ASSIGNED,
            "cannot set status assigned: the ticket is in_progress, so work has started;"
            " assign it to someone else instead (the status stays)",
        ),
    ],
)
def test_refusal_reads_well(current: Status, target: Status, reason: str) -> None:
    with pytest.raises(TransitionRefused, match=r"^cannot") as info:
        lifecycle.check(current, target)
    assert str(info.value) == reason


def test_refusal_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        lifecycle.check(S.CLOSED, S.PENDING)


def test_allowed_is_read_only() -> None:
    with pytest.raises(TypeError):
        lifecycle.ALLOWED[S.CANCELLED] = frozenset({S.NEW})  # type: ignore[index]


@pytest.mark.parametrize(
    ("has_assignee", "target"),
    [(True, S.IN_PROGRESS), (False, S.NEW)],
)
def test_reopen_target(has_assignee: bool, target: Status) -> None:
    assert lifecycle.reopen_target(has_assignee) == target
    lifecycle.check(S.RESOLVED, target)
    lifecycle.check(S.CLOSED, target)
    assert not lifecycle.is_allowed(S.CANCELLED, target)  # cancelled is final


@pytest.mark.parametrize(
    ("current", "after"),
    [
        (S.NEW, S.ASSIGNED),
        (S.ASSIGNED, S.ASSIGNED),  # reassignment keeps the status
        (S.IN_PROGRESS, S.IN_PROGRESS),
        (S.PENDING, S.PENDING),
        (S.RESOLVED, S.RESOLVED),
        (S.CLOSED, S.CLOSED),
        (S.CANCELLED, S.CANCELLED),
    ],
)
def test_on_assign(current: Status, after: Status) -> None:
    assert lifecycle.on_assign(current) == after


@pytest.mark.parametrize(
    ("current", "pending", "after"),
    [
        (S.NEW, False, S.IN_PROGRESS),
        (S.ASSIGNED, False, S.IN_PROGRESS),
        (S.IN_PROGRESS, False, S.IN_PROGRESS),
        (S.PENDING, False, S.IN_PROGRESS),  # #pending must be said again to stay pending
        (S.NEW, True, S.PENDING),  # first reply is a question
        (S.ASSIGNED, True, S.PENDING),
        (S.IN_PROGRESS, True, S.PENDING),
        (S.PENDING, True, S.PENDING),
        (S.RESOLVED, False, S.RESOLVED),  # a reply never reopens
        (S.RESOLVED, True, S.RESOLVED),
        (S.CLOSED, False, S.CLOSED),
        (S.CANCELLED, True, S.CANCELLED),
    ],
)
def test_on_agent_reply(current: Status, pending: bool, after: Status) -> None:
    assert lifecycle.on_agent_reply(current, pending=pending) == after


@pytest.mark.parametrize(
    ("current", "after"),
    [
        (S.NEW, S.NEW),
        (S.ASSIGNED, S.ASSIGNED),
        (S.IN_PROGRESS, S.IN_PROGRESS),
        (S.PENDING, S.IN_PROGRESS),  # the wait is over
        (S.RESOLVED, S.RESOLVED),  # verification decides
        (S.CLOSED, S.CLOSED),  # reopen_days decides
        (S.CANCELLED, S.CANCELLED),
    ],
)
def test_on_requester_reply(current: Status, after: Status) -> None:
    assert lifecycle.on_requester_reply(current) == after


@pytest.mark.parametrize("current", list(Status))
def test_event_helpers_only_make_allowed_changes(current: Status) -> None:
    results = [
        lifecycle.on_assign(current),
        lifecycle.on_agent_reply(current),
        lifecycle.on_agent_reply(current, pending=True),
        lifecycle.on_requester_reply(current),
    ]
    for after in results:
        if after != current:
            lifecycle.check(current, after)
