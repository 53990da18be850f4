"""Batch ingest's helpers: the parse handed out in pieces, each stored as it comes."""

from __future__ import annotations

from typing import Any

from daemon.cli.ingest import _Helpers
from daemon.core.domain import ParsedMessage
from tests.support.mail import make_mail


def subjects(prepared: list[Any]) -> list[str]:
    assert all(isinstance(p.msg, ParsedMessage) for p in prepared)
    return [p.msg.subject for p in prepared]


def test_the_first_batch_is_parsed_in_small_pieces_and_a_larger_one_in_halves(app: Any) -> None:
    """The first tickets are stored once six messages are parsed, not fifty;
    a batch larger than the last goes to both helpers at once, one no larger
    in one piece (a commit each). The pieces, in order, are the batch as the
    main process would have parsed it."""
    helpers = _Helpers(app)
    try:
        first = [make_mail(subject=f"first {n}") for n in range(50)]
        pieces = helpers.parse(first)
        assert [size for size, _ in pieces] == [6, 12, 32]
        got = [p for _, future in pieces for p in future.result(timeout=60)]
        assert subjects(got) == subjects(helpers.parse_here(first))
        later = [make_mail(subject=f"later {n}") for n in range(200)]
        pieces = helpers.parse(later)
        assert [size for size, _ in pieces] == [100, 100]
        got = [p for _, future in pieces for p in future.result(timeout=60)]
        assert subjects(got) == [f"later {n}" for n in range(200)]
        same = [make_mail(subject=f"same {n}") for n in range(200)]
        pieces = helpers.parse(same)
        assert [size for size, _ in pieces] == [200]
        assert subjects(pieces[0][1].result(timeout=60)) == [f"same {n}" for n in range(200)]
    finally:
        helpers.close()


def test_a_small_batch_is_parsed_here_in_one_piece(app: Any) -> None:
    helpers = _Helpers(app)
    try:
        [(size, future)] = helpers.parse([make_mail(subject="alone")])
        assert size == 1 and future.done()
        assert helpers.pool is None
    finally:
        helpers.close()
