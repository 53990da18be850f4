"""The corpus bench's check: each manifest ticket is one spocd ticket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from daemon.cli.bench.corpus import Threading, check_threading, desk_rules, load_corpus

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


def test_a_folder_that_is_no_corpus_is_refused_in_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"not a make_corpus\.py corpus .*FileNotFoundError"):
        load_corpus(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"not a make_corpus\.py corpus .*JSONDecodeError"):
        load_corpus(tmp_path)
    manifest = {"messages": [{"ticket": 1}]}  # a message without its Message-ID
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(SystemExit, match=r"not a make_corpus\.py corpus .*KeyError"):
        load_corpus(tmp_path)


def test_the_mbox_is_read_beside_the_manifest_whatever_path_it_names(tmp_path: Path) -> None:
    (tmp_path / "corpus.mbox").write_bytes(b"")
    messages = [{"message_id": "<a@x>", "ticket": 1}]
    manifest = {"summary": {"mbox": "../../elsewhere/corpus.mbox"}, "messages": messages}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert load_corpus(tmp_path) == (messages, tmp_path / "corpus.mbox")
    (tmp_path / "corpus.mbox").unlink()
    with pytest.raises(SystemExit, match="no mbox"):
        load_corpus(tmp_path)
