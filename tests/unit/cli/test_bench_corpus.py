"""The corpus bench's check: each manifest ticket is one spocd ticket."""

from __future__ import annotations

import yaml

from daemon.cli.bench.corpus import Threading, check_threading, desk_rules

MANIFEST = [
    {"message_id": "<a1@x>", "ticket": 1},
    {"message_id": "<a2@x>", "ticket": 1},
    {"message_id": "<b1@x>", "ticket": 2},
]


def line(message_id: str, ticket: str | None) -> dict[str, object]:
    return {"message_id": message_id, "ticket": ticket, "outcome": "created"}


def test_a_run_that_threads_as_the_manifest_says_is_ok() -> None:
    found = check_threading(
        MANIFEST, [line("a1@x", "HD-1"), line("a2@x", "HD-1"), line("b1@x", "HD-2")]
    )
    assert found == Threading(tickets=2, expected=2, split=0, mixed=0, unplaced=0)
    assert found.ok


def test_a_reply_on_a_ticket_of_its_own_is_a_split() -> None:
    found = check_threading(
        MANIFEST, [line("a1@x", "HD-1"), line("a2@x", "HD-3"), line("b1@x", "HD-2")]
    )
    assert (found.split, found.mixed, found.tickets) == (1, 0, 3)
    assert not found.ok


def test_two_conversations_in_one_ticket_are_mixed() -> None:
    found = check_threading(
        MANIFEST, [line("a1@x", "HD-1"), line("a2@x", "HD-1"), line("b1@x", "HD-1")]
    )
    assert (found.split, found.mixed, found.tickets) == (0, 1, 1)
    assert not found.ok


def test_a_message_without_a_ticket_is_unplaced() -> None:
    quarantined = {"message_id": "b1@x", "ticket": None, "outcome": "quarantined"}
    found = check_threading(MANIFEST, [line("a1@x", "HD-1"), line("a2@x", "HD-1"), quarantined])
    assert found.unplaced == 1 and not found.ok


def test_the_corpus_agents_join_the_second_line_group() -> None:
    starter = "groups:\n  second-line: {lead: lead@example.com, members: [anna@example.com]}\n"
    rules = yaml.safe_load(desk_rules(starter, ["kim@example.org", "kim@example.org"]))
    assert rules["groups"]["second-line"]["members"] == ["anna@example.com", "kim@example.org"]
