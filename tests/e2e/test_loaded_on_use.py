"""What a command loads only when its work needs it: every `spocd ingest`
pays for what it imports, so a Maildir desk never loads the SMTP relay's
smtplib, html2text waits for a mail that has no text part, and batch
ingest's helpers fork before the database layer and the templates load."""

from __future__ import annotations

import json
import mailbox
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support.mail import make_mail
from tests.support.proc import ROOT, env

#: `spocd ingest` in this process, then which of the modules it loaded.
SCRIPT = """
import json, sys
from daemon.cli.pipe import main
sys.argv = ["spocd", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps({m: m in sys.modules for m in ("smtplib", "html2text")}))
"""


#: spocd itself, as `python -m daemon` runs it.
SPOCD = "import sys; from daemon.cli.pipe import main; sys.exit(main())"


def run_script(script: str, *args: str) -> list[str]:
    """`script` run with `args` as spocd's command line; its output's lines."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env(),
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()


def ingest_loading(config: Path, eml: Path) -> tuple[dict[str, bool], str]:
    *report, loaded = run_script(SCRIPT, "ingest", "-c", str(config), "--json", str(eml))
    return json.loads(loaded), json.loads(report[0])["outcome"]


def html_only(subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "ewa.nowak@example.org"
    msg["To"] = "helpdesk@example.com"
    msg["Subject"] = subject
    msg.set_content("<p>Skaner <b>nie działa</b> od rana.</p>", subtype="html")
    return msg.as_bytes()


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    return write_config(tmp_path, sqlite_url)


def test_a_maildir_desk_ingests_plain_mail_without_smtplib_or_html2text(
    config: Path, tmp_path: Path
) -> None:
    eml = tmp_path / "plain.eml"
    eml.write_bytes(make_mail(subject="Monitor flickers"))
    loaded, outcome = ingest_loading(config, eml)
    assert outcome == "created"
    assert loaded == {"smtplib": False, "html2text": False}
    assert any((tmp_path / "sent" / "new").iterdir())  # the acknowledgement went out


def test_a_mail_with_only_html_loads_html2text_and_is_read_as_text(
    config: Path, tmp_path: Path
) -> None:
    eml = tmp_path / "html.eml"
    eml.write_bytes(html_only("Skaner"))
    loaded, outcome = ingest_loading(config, eml)
    assert outcome == "created"
    assert loaded == {"smtplib": False, "html2text": True}
    show = run_script(SPOCD, "show", "HD-1", "--json", "-c", str(config))
    inbound = json.loads("\n".join(show))["messages"][0]
    assert inbound["body"] == "Skaner nie działa od rana."


#: `spocd ingest` of an mbox, asking at the moment the app is about to open
#: what the parsing helpers and this process have loaded by then.
EARLY = """
import json, sys
import daemon.cli.main as cli
from daemon.cli import ingest

NAMES = ("mailparser", "daemon.rules.ruleset", "sqlalchemy", "jinja2", "daemon.app.pipeline")


def loaded(names):
    return {name: name in sys.modules for name in names}


seen = {}
real_start, real_open = ingest._Helpers.start, cli.open_app


def start(self):
    seen.setdefault("pool", real_start(self))
    return seen["pool"]


def open_app(*args, **kwargs):
    pool = seen.get("pool")
    seen["helper"] = pool.submit(loaded, NAMES).result(timeout=60) if pool else None
    seen["main"] = loaded(NAMES)
    return real_open(*args, **kwargs)


ingest._Helpers.start, cli.open_app = start, open_app
sys.argv = ["spocd", *sys.argv[1:]]
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
seen["main at the end"] = loaded(["mailparser"])
print(json.dumps({key: value for key, value in seen.items() if key != "pool"}))
"""


def test_helpers_start_parsing_before_the_database_layer_and_templates_load(
    config: Path, tmp_path: Path
) -> None:
    """Batch ingest forks its helpers with only the rules loaded: they load
    parsing and parse the first batches while this process loads the rest.
    This process never parses (the helpers do), so it never loads mail-parser."""
    box = mailbox.mbox(tmp_path / "in.mbox")
    for n in range(120):
        box.add(make_mail(sender=f"user{n}@example.org", subject=f"Problem {n}"))
    box.close()
    mbox = str(tmp_path / "in.mbox")
    *lines, seen = run_script(EARLY, "ingest", "-c", str(config), "--json", mbox)
    before_the_app = {
        "mailparser": False,
        "daemon.rules.ruleset": True,
        "sqlalchemy": False,
        "jinja2": False,
        "daemon.app.pipeline": False,
    }
    assert json.loads(seen) == {
        "helper": {**before_the_app, "mailparser": True},  # it has parsed a batch
        "main": before_the_app,
        "main at the end": {"mailparser": False},
    }
    outcomes = [json.loads(line)["outcome"] for line in lines]
    assert outcomes == ["created"] * 120
    assert len(list((tmp_path / "sent" / "new").iterdir())) >= 120  # acknowledgements


def test_checking_the_rules_loads_no_database_layer(config: Path) -> None:
    """`spocd rules check` reads and compiles rules.yaml, nothing more."""
    script = SCRIPT.replace('("smtplib", "html2text")', '("sqlalchemy", "daemon.rules.ruleset")')
    *_, loaded = run_script(script, "rules", "check", "-c", str(config))
    assert json.loads(loaded) == {
        "sqlalchemy": False,
        "daemon.rules.ruleset": True,
    }
