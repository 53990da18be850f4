"""`spocd rules check|test` with contracts (SPEC §7), as a real process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import DATA, write_config
from tests.support.mail import make_mail
from tests.support.proc import spocd

RULES = DATA / "rules" / "contracts_desk.yaml"


def _rules(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "rules.yaml"
    text = RULES.read_text("utf-8")
    path.write_text(text.replace("rules:\n", extra + "rules:\n", 1), "utf-8")
    return path


def _config(tmp_path: Path, rules: Path) -> Path:
    return write_config(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", paths={"rules": str(rules)}
    )


def test_rules_check_warns_of_a_contract_that_matches_nobody(tmp_path: Path) -> None:
    path = _rules(tmp_path, "  initech:\n    name: Initech (signed, no domain yet)\n")
    done = spocd("rules", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert b"3 contracts" in done.stdout
    assert b"warning: contracts.initech (line " in done.stderr
    assert b"matches nobody" in done.stderr


def test_rules_check_refuses_a_domain_under_two_contracts(tmp_path: Path) -> None:
    path = _rules(tmp_path, "  dup:\n    name: Dup\n    match: {domains: [globex.com]}\n")
    done = spocd("rules", "check", str(path))
    assert done.returncode == 65
    line = RULES.read_text("utf-8").split("rules:\n")[0].count("\n") + 3
    assert f"rules.yaml:{line}:".encode() in done.stderr
    assert b"'globex.com' is in contract 'globex'" in done.stderr and b"'dup'" in done.stderr


def test_rules_test_shows_the_contract_and_why(tmp_path: Path) -> None:
    path = _rules(tmp_path)
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail(sender="Jan <jan@biuro.acme.pl>", subject="Printer jams"))
    config = _config(tmp_path, path)
    text = spocd("rules", "test", str(mail), config=config)
    assert text.returncode == 0, text.stderr
    assert b"contract:  acme (matched by domain acme.pl)" in text.stdout
    as_json = spocd("rules", "test", str(mail), "--json", config=config)
    decision = json.loads(as_json.stdout)["decision"]
    assert (decision["contract"], decision["contract_reason"]) == (
        "acme",
        "matched by domain acme.pl",
    )
    mail.write_bytes(make_mail(sender="ola@acme.pl", subject="Partner asks"))
    forced = json.loads(spocd("rules", "test", str(mail), "--json", config=config).stdout)
    assert forced["decision"]["contract"] == "globex"
    assert forced["decision"]["contract_reason"] == "set by rule 'Forced contract'"


def test_rules_test_of_an_escalation_takes_the_forwarded_requesters_contract(
    tmp_path: Path,
) -> None:
    path = _rules(tmp_path)
    mail = tmp_path / "fw.eml"
    mail.write_bytes(
        make_mail(
            sender="sd@acme.pl",
            subject="FW: Printer jams",
            body="Take this.\n\n-----Original Message-----\n"
            "From: Ola <ola@globex.com>\nSubject: Printer jams\n\nIt jams.\n",
        )
    )
    config = _config(tmp_path, path)
    done = spocd("rules", "test", str(mail), "--escalation", "--json", config=config)
    found = json.loads(done.stdout)
    assert found["escalation"]["requester"] == "ola@globex.com"
    assert found["decision"]["contract"] == "globex"
