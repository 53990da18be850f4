"""The daemon's parser process: a real spawned helper, its rules following
the daemon's version, and every failure of it leaving the daemon to parse."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from daemon.app.prepare import prepare_many
from daemon.config.settings import LimitsSettings
from daemon.core.domain import Intake
from daemon.core.errors import NotMail
from daemon.ports import QueuedRaw
from daemon.rules import ruleset as rules_mod
from daemon.service.children import stop_pool
from daemon.service.parsers import ParserProcess
from tests.conftest import ROOT
from tests.support.flow import ticket
from tests.support.mail import make_mail
from tests.support.parser_jobs import misbehaving
from tests.support.proc import running, wait_until

LIMITS = LimitsSettings()


def _rules(path: Path) -> rules_mod.Rules:
    return rules_mod.load_rules(path.read_text(encoding="utf-8"), str(path))


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text((ROOT / "rules.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.fixture
def parser() -> ParserProcess:
    helper = ParserProcess(retry_seconds=0)
    yield helper
    helper.close()


def test_the_helper_prepares_what_the_daemon_would(parser, rules_file):
    rules = _rules(rules_file)
    raws = [
        make_mail(subject="Centrala VoIP nie działa", message_id="p1@example.org"),
        make_mail(subject="Re: x", in_reply_to="earlier@example.org", message_id="p2@x.org"),
        b"not a mail at all",
    ]
    there = parser.prepare(raws, rules_file, rules.version, LIMITS)
    here = prepare_many(raws, LIMITS.max_attachment_bytes, rules, LIMITS.max_parse_seconds)
    assert there is not None and len(there) == 3
    assert there[0].rules_version == rules.version
    assert there[0].decision == here[0].decision and there[0].decision.group == "telephony"
    assert there[0].msg == here[0].msg
    assert there[1].decision is None and there[1].msg == here[1].msg  # a reply: not decided
    assert type(there[2].msg) is type(here[2].msg)  # NotMail, crossed back as itself
    assert os.getpid() != _helper_pid(parser)


def test_the_helper_follows_the_rules_version_the_daemon_runs(parser, rules_file):
    old = _rules(rules_file)
    raw = make_mail(subject="Centrala VoIP nie działa")
    [first] = parser.prepare([raw], rules_file, old.version, LIMITS)
    assert first.decision.group == "telephony"

    text = rules_file.read_text(encoding="utf-8")
    rules_file.write_text(text.replace("group: telephony, impact", "group: third-line, impact"))
    new = _rules(rules_file)
    [second] = parser.prepare([raw], rules_file, new.version, LIMITS)
    assert second.rules_version == new.version and second.decision.group == "third-line"

    # A version the file no longer has (changed again): the helper decides
    # with what it read, and says so; the pipeline decides again.
    [third] = parser.prepare([raw], rules_file, "not-on-disk", LIMITS)
    assert third.rules_version == new.version != "not-on-disk"


def test_unreadable_rules_leave_the_decision_to_the_daemon(parser, tmp_path):
    raw = make_mail(subject="Printer jams")
    [prepared] = parser.prepare([raw], tmp_path / "missing.yaml", "v1", LIMITS)
    assert prepared.decision is None and prepared.rules_version == ""


def test_a_helper_that_died_while_idle_is_replaced(parser, rules_file):
    version = _rules(rules_file).version
    raws = [make_mail(subject="Printer jams"), make_mail(subject="VoIP down")]
    assert parser.prepare(raws, rules_file, version, LIMITS) is not None
    first = _helper_pid(parser)
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    again = parser.prepare(raws, rules_file, version, LIMITS)
    assert again is not None and [p.msg.subject for p in again] == ["Printer jams", "VoIP down"]
    assert _helper_pid(parser) != first


def _marked(how: str, subject: str) -> bytes:
    return make_mail(subject=subject, headers={"X-Test-Parser": how})


@pytest.mark.parametrize("how", ["exit", "hang"])
def test_a_message_that_kills_or_hangs_the_helper_is_quarantined_alone(rules_file, how):
    """A message that takes the parser down is answered as unreadable (the
    pipeline quarantines it with the reason); the others of its group are
    prepared, and nothing is parsed in the daemon, where it would crash it."""
    parser = ParserProcess(retry_seconds=60, slack_seconds=1.0, job=misbehaving)
    limits = LimitsSettings(max_parse_seconds=1)
    try:
        version = _rules(rules_file).version
        raws = [
            make_mail(subject="Printer jams"),
            _marked(how, "poison"),
            make_mail(subject="VoIP down"),
        ]
        out = parser.prepare(raws, rules_file, version, limits)
        assert out is not None
        assert [o.msg.subject for o in (out[0], out[2])] == ["Printer jams", "VoIP down"]
        assert isinstance(out[1].msg, NotMail)
        word = "died" if how == "exit" else "hung"
        assert str(out[1].msg) == f"the parser process {word} reading this message"
        # Not resting: the next group goes to a helper at once.
        assert parser.prepare([make_mail(subject="x")], rules_file, version, limits) is not None
    finally:
        parser.close()


def test_a_helper_that_answers_nonsense_rests_and_the_daemon_parses(rules_file):
    parser = ParserProcess(retry_seconds=60, job=misbehaving)
    try:
        version = _rules(rules_file).version
        raw = make_mail(subject="Printer jams")
        assert parser.prepare([raw], rules_file, version, LIMITS) is not None
        assert parser.prepare([_marked("raise", "odd")], rules_file, version, LIMITS) is None
        assert parser.prepare([raw], rules_file, version, LIMITS) is None  # resting
    finally:
        parser.close()


def test_a_poison_message_is_quarantined_by_the_pipeline_with_the_reason(app):
    parser = ParserProcess(slack_seconds=1.0, job=misbehaving)
    rules = app.runtime.rules
    app.inbound.preparer = lambda raws: parser.prepare(
        raws, ROOT / "rules.yaml", rules.version, LIMITS
    )
    try:
        with app.store.transaction() as tx:
            for raw in (_marked("exit", "poison"), make_mail(subject="Printer jams")):
                tx.inbound.add(QueuedRaw(raw=raw, intake=Intake.SMTP), app.clock.now())
        outcomes = [outcome for _, outcome in app.inbound.process_group()]
    finally:
        parser.close()
    assert [o.outcome for o in outcomes] == ["quarantined", "created"]
    assert "parser process died" in outcomes[0].detail


def test_stopping_kills_a_helper_that_hangs():
    pool = concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn")
    )
    pool.submit(time.sleep, 600)
    time.sleep(0.5)
    [process] = list(pool._processes.values())
    stop_pool(pool)
    # Not `process.join()`: the pool's own thread reaps the killed helper too.
    wait_until(lambda: not running(process.pid), timeout=10)


def test_the_worker_takes_the_helpers_work_and_parses_itself_without_it(app):
    raw = make_mail(subject="Centrala VoIP nie działa", message_id="w1@example.org")
    asked: list[int] = []

    def helper(raws: list[bytes]) -> list[object]:
        asked.append(len(raws))
        [prepared] = prepare_many(raws, 1 << 20, app.runtime.rules)
        return [prepared.__class__(prepared.msg, None, prepared.rules_version)]

    app.inbound.preparer = helper
    with app.store.transaction() as tx:
        tx.inbound.add(QueuedRaw(raw=raw, intake=Intake.SMTP), app.clock.now())
    [(_, outcome)] = app.inbound.process_group()
    assert asked == [1] and ticket(app, outcome.ticket).group == "telephony"

    app.inbound.preparer = lambda raws: None  # the helper could not: parsed here
    with app.store.transaction() as tx:
        tx.inbound.add(
            QueuedRaw(
                raw=make_mail(subject="VoIP down", message_id="w2@x.org"), intake=Intake.SMTP
            ),
            app.clock.now(),
        )
    [(_, outcome)] = app.inbound.process_group()
    assert outcome.outcome == "created" and ticket(app, outcome.ticket).group == "telephony"


def _helper_pid(parser: ParserProcess) -> int:
    [pid] = list(parser._executor()._processes)  # type: ignore[attr-defined]
    return pid
