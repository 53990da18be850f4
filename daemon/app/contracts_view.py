"""`spocd contracts`: each contract with its open tickets and their SLA states.

Pure: built from the SLA board's rows (`daemon.app.board`), so the listing,
the board and the digest agree on every state. The contracts of rules.yaml
come first, in file order (also those with nothing open); then any contract
id found only on open tickets (a contract removed by a reload: its tickets
keep it, `in_rules` false); last, when there are any, the open tickets under
no contract, as an entry whose `id` is null.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from daemon.app import board
from daemon.rules.ruleset import Rules

STATES = board.STATES  # breached, warning, ok, paused
NO_CONTRACT_NAME = "(no contract)"


def listing(rows: Sequence[board.Row], rules: Rules) -> list[dict[str, Any]]:
    """Rows already ordered by time left (as `board.rows` gives them)."""
    ids: list[str | None] = list(rules.contracts)
    ids += sorted({r.contract for r in rows if r.contract and r.contract not in rules.contracts})
    if any(r.contract is None for r in rows):
        ids.append(None)
    out = []
    for cid in ids:
        mine = [r for r in rows if r.contract == cid]
        contract = rules.contracts.get(cid) if cid else None
        states = Counter(r.sla_state for r in mine)
        worst = min(mine, key=lambda r: STATES.index(r.sla_state), default=None)
        out.append(
            {
                "id": cid,
                "name": contract.name if contract else (None if cid else NO_CONTRACT_NAME),
                "in_rules": contract is not None,
                "report": contract.report.every if contract and contract.report else None,
                "open": len(mine),
                "sla_states": {s: states[s] for s in STATES},
                "worst": worst.json() if worst else None,
                "tickets": [r.json() for r in mine],
            }
        )
    return out


def format_text(entries: Sequence[dict[str, Any]]) -> str:
    """One line per contract, then its open tickets indented."""
    if not entries:
        return "No contracts in rules.yaml and no open tickets.\n"
    lines = [
        f"{'contract':<16}{'name':<28}{'open':>5}{'breached':>9}{'warning':>8}"
        f"{'ok':>5}{'paused':>7}  report"
    ]
    for e in entries:
        s = e["sla_states"]
        name = e["name"] or "(removed from rules)"
        lines.append(
            f"{(e['id'] or '-')[:15]:<16}{name[:27]:<28}{e['open']:>5}{s['breached']:>9}"
            f"{s['warning']:>8}{s['ok']:>5}{s['paused']:>7}  {e['report'] or '-'}"
        )
        for t in e["tickets"]:
            due = f"{t['next_deadline']} due {t['due']}" if t["due"] else "-"
            lines.append(
                f"    {t['id']:<9} {t['priority']:<3} {t['sla_state']:<9} {t['status']:<12}"
                f"{due}  {t['subject'][:40]}"
            )
    return "\n".join(lines) + "\n"
