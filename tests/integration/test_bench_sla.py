"""The SLA sweep benchmark runs and sweeps what it says is due (no timing)."""

from __future__ import annotations

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
