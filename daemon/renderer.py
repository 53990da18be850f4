"""Jinja2 templates from `templates/<language>/`, rendered in the sandbox.

User text only ever enters as context data, never as template source; HTML
templates autoescape it. A template missing in a language falls back to
English, so adding a language can be done one template at a time.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from daemon.ports import Rendered

LANGUAGES = ("en", "pl")
#: Every template a complete language folder has (checked at load and in tests).
KINDS = (
    "ack",
    "agent_new",
    "agent_reply",
    "assigned",
    "auto_closed",
    "closed",
    "command_result",
    "reopened",
    "verification",
    "verification_reminder",
    "escalation_notice",
    "status_update",
)


class TemplateRenderer:
    def __init__(self, root: Path, timezone: str = "Europe/Warsaw") -> None:
        self.root = root
        self.zone = ZoneInfo(timezone)
        if not (root / "en").is_dir():
            raise FileNotFoundError(f"{root}/en: no English templates")
        self._envs = {lang: self._environment(lang) for lang in LANGUAGES}

    def _environment(self, language: str) -> SandboxedEnvironment:
        loaders = [FileSystemLoader(str(self.root / language))]
        if language != "en":
            loaders.append(FileSystemLoader(str(self.root / "en")))
        env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            autoescape=lambda name: bool(name and name.endswith(".html")),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters["when"] = self._when
        return env

    def _when(self, value: datetime | None) -> str:
        if value is None:
            return "-"
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")

    def render(self, language: str, name: str, context: dict[str, Any]) -> Rendered:
        env = self._envs.get(language) or self._envs["en"]
        ctx = {**context, "language": language}
        return Rendered(
            subject=env.get_template(f"{name}.subject.txt").render(ctx).strip(),
            text=env.get_template(f"{name}.txt").render(ctx),
            html=env.get_template(f"{name}.html").render(ctx),
        )

    def missing(self) -> list[str]:
        """Templates a language lacks (it would fall back to English)."""
        gaps = []
        for lang in LANGUAGES:
            for kind in KINDS:
                for suffix in (".subject.txt", ".txt", ".html"):
                    if not (self.root / lang / f"{kind}{suffix}").is_file():
                        gaps.append(f"{lang}/{kind}{suffix}")
        return gaps

    def check(self) -> None:
        """Compile every template now, so a broken one is refused at load."""
        for lang, env in self._envs.items():
            for kind in KINDS:
                for suffix in (".subject.txt", ".txt", ".html"):
                    try:
                        env.get_template(f"{kind}{suffix}")
                    except TemplateNotFound:
                        if lang == "en":
                            raise
