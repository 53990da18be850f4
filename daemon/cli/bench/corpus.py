"""`spocd bench --corpus DIR`: the peers' corpus, ingested as the peers ingest it.

The speed round is judged side by side: the same mail through spocd, Roundup
and django-helpdesk on one machine in one run (`../shared/bench/`). Their
scripts time a fresh, initialised desk and check the threading against the
corpus manifest; this does the same for spocd, so a round is three commands
and no hand-written harness: a fresh folder with the starter rules (as
`spocd init` writes them) whose second-line group also has the corpus's
agents, `spocd db upgrade` before the clock starts, then `spocd ingest` of the
mbox timed from its start to its exit, and every message's ticket held
against the manifest.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from daemon.cli.bench.load import _scratch, _spocd, timed_run, write_config
from daemon.cli.main import EX_DATAERR, EX_OK

#: `spocd ingest` exit codes after which its report is read: all went in, or some
#: was not mail (quarantined; the check counts it as unplaced).
_REPORTED = (EX_OK, EX_DATAERR)

#: The starter rules' group the corpus's agents join (their replies are agents' mail).
AGENTS_GROUP = "second-line"


@dataclass(frozen=True)
class Threading:
    """How the tickets spocd made compare with the manifest's."""

    tickets: int  # distinct tickets the run reported
    expected: int  # tickets in the manifest
    split: int  # manifest tickets whose messages went to more than one ticket
    mixed: int  # spocd tickets holding messages of more than one manifest ticket
    unplaced: int  # messages with no ticket (quarantined, failed, not reported)

    @property
    def ok(self) -> bool:
        return (self.split, self.mixed, self.unplaced) == (0, 0, 0) and (
            self.tickets == self.expected
        )


def check_threading(
    manifest: Sequence[Mapping[str, Any]], reported: Iterable[Mapping[str, Any]]
) -> Threading:
    """Each manifest ticket must be one spocd ticket, and no two the same one.
    `reported` is `spocd ingest --json` output; messages are matched by
    Message-ID (the manifest writes it in angle brackets, spocd without)."""
    ticket_of = {
        str(line["message_id"]).strip("<>"): line.get("ticket")
        for line in reported
        if line.get("message_id")
    }
    ours: dict[Any, set[str]] = collections.defaultdict(set)
    theirs: dict[str, set[Any]] = collections.defaultdict(set)
    unplaced = 0
    for message in manifest:
        ticket = ticket_of.get(str(message["message_id"]).strip("<>"))
        if not ticket:
            unplaced += 1
            continue
        ours[message["ticket"]].add(ticket)
        theirs[ticket].add(message["ticket"])
    return Threading(
        tickets=len(theirs),
        expected=len({m["ticket"] for m in manifest}),
        split=sum(1 for found in ours.values() if len(found) > 1),
        mixed=sum(1 for found in theirs.values() if len(found) > 1),
        unplaced=unplaced,
    )


def desk_rules(starter_rules: str, agents: Iterable[str]) -> str:
    """The starter rules with the corpus's agents in the second-line group."""
    rules = yaml.safe_load(starter_rules)
    group = rules["groups"][AGENTS_GROUP]
    group["members"] = [*group.get("members", []), *sorted(set(agents))]
    return yaml.safe_dump(rules, allow_unicode=True, sort_keys=False)


def load_corpus(folder: Path) -> tuple[list[dict[str, Any]], Path]:
    """The manifest's messages and the mbox beside it; a folder that is not a
    make_corpus.py corpus is refused with a sentence, not a traceback."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        messages = list(manifest["messages"])
        for message in messages:
            _ = (message["message_id"], message["ticket"])
        name = str(manifest.get("summary", {}).get("mbox") or "corpus.mbox")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SystemExit(
            f"{folder}: not a make_corpus.py corpus (manifest.json: {type(exc).__name__}: {exc})"
        ) from None
    mbox = folder / Path(name).name  # beside the manifest, whatever the manifest says
    if not mbox.is_file():
        raise SystemExit(f"{mbox}: no mbox (make the corpus with make_corpus.py --mbox)")
    return messages, mbox


def run(folder: Path, database: str | None = None) -> dict[str, Any]:
    """One timed ingest of the corpus into a fresh desk; its figures and check."""
    from daemon.service.desk_files import starter_root

    messages, mbox = load_corpus(folder)
    agents = [str(m["author"]) for m in messages if m.get("agent")]
    starter_rules = (starter_root() / "rules.yaml").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="spocd-corpus-") as tmp, _scratch(database) as url:
        desk = Path(tmp)
        config = write_config(desk, url, rules=desk_rules(starter_rules, agents))
        subprocess.run(_spocd("db", "upgrade", "-c", str(config)), check=True, capture_output=True)
        os.sync()  # the clock starts on a quiet disk, as the peers' scripts do
        ingest = timed_run(_spocd("ingest", "-c", str(config), "--json", str(mbox)))
        if ingest.returncode not in _REPORTED:
            raise SystemExit(f"ingest failed: {ingest.stderr.decode()[-2000:]}")
        reported = [json.loads(line) for line in ingest.stdout.decode().splitlines() if line]
        sent_folder = desk / "sent" / "new"
        sent = sum(1 for _ in sent_folder.iterdir()) if sent_folder.is_dir() else 0
    check = check_threading(messages, reported)
    return {
        "messages": len(messages),
        "seconds": round(ingest.seconds, 2),
        "messages_per_s": round(len(messages) / ingest.seconds, 1),
        "cpu_s": round(ingest.cpu_seconds, 2),
        "peak_rss_mb": round(ingest.peak_rss_mb, 1),
        "outgoing_mails": sent,
        **asdict(check),
        "threading_ok": check.ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spocd bench --corpus", description=__doc__.splitlines()[0]
    )
    parser.add_argument("folder", type=Path, help="a make_corpus.py folder (manifest.json, mbox)")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh desk")
    parser.add_argument("--database", help="a PostgreSQL server URL (a scratch database there)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs = [run(args.folder, args.database) for _ in range(max(1, args.repeat))]
    for figures in runs:
        if args.json:
            print(json.dumps(figures))
        else:
            print("corpus  " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    if len(runs) > 1 and not args.json:
        rates = [r["messages_per_s"] for r in runs]
        print(
            f"corpus  runs={len(runs)}  messages_per_s min={min(rates)} "
            f"median={statistics.median(rates)} max={max(rates)}"
        )
    return 0 if all(r["threading_ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
