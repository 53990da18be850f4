"""The SLA sweep benchmark runs and sweeps what it says is due (no timing)."""

from __future__ import annotations

from datetime import UTC, datetime

from daemon.cli.bench import sla as bench_sla


def test_the_benchmark_builds_tickets_and_sweeps_the_due_share() -> None:
    result = bench_sla.run(count=400, due_share=0.05)
    assert (result.tickets, result.due) == (400, 40)  # 20 late tickets: warning + first step
    assert result.timers == 400 * 11  # 2 targets x (warning, breach, 3 steps) + 1 update
    assert result.done == {"sla_warnings": 20, "escalations": 20}
    assert result.mails == 20
    assert "ix_timers_due" in result.plan


def test_main_prints_the_figures(capsys) -> None:  # type: ignore[no-untyped-def]
    assert bench_sla.main(["--tickets", "200", "--due-share", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "sweep" in out and "due query" in out and "composing mail" in out


def test_the_benchmark_with_contracts_sweeps_tickets_on_their_contracts_tables(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    from daemon.adapters.storage.store import SqlStore

    result = bench_sla.run(count=400, due_share=0.05, keep=tmp_path, contracts=20)
    assert (result.tickets, result.due) == (400, 40)
    assert result.done == {"sla_warnings": 20, "escalations": 20}
    store = SqlStore.open(f"sqlite:///{tmp_path / 'bench.db'}")
    try:
        with store.reading() as tx:
            tickets = tx.tickets.listing(None)
    finally:
        store.close()
    assert {t.contract for t in tickets} == {f"client{i}" for i in range(20)}
    late = tickets[0]  # the late cohort: client0's P3 row, 2 business days (not 3)
    assert late.contract == "client0" and "sla_table" in late.extra
    # created Wednesday 09:48 Warsaw: resolution due Friday 09:48 Warsaw
    assert late.resolution_due == datetime(2026, 11, 27, 8, 48, tzinfo=UTC)
