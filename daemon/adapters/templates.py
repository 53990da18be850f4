"""Jinja2 templates from `templates/<language>/`, rendered in the sandbox.

User text only ever enters as context data, never as template source; HTML
templates autoescape it. A template missing in a language falls back to
English, so adding a language can be done one template at a time.

The admin writes the templates, so they are checked whole at load (every
file compiled, every include found) and every rendering is bounded: a loop
that never ends or a mail of gigabytes stops with an error naming the
template, instead of hanging or swamping the daemon at every retry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
)
from jinja2.loaders import split_template_path
from jinja2.runtime import Context, Macro
from jinja2.sandbox import SandboxedEnvironment

from daemon.adapters.moments import human_time
from daemon.adapters.template_bounds import BoundedSandbox
from daemon.adapters.template_cache import bytecode_cache
from daemon.adapters.template_check import TemplateCheck
from daemon.config.files import read_config_file
from daemon.ports import Rendered

LANGUAGES = ("en", "pl")
#: Every template a complete language folder has (checked at load and in tests).
KINDS = (
    "ack",
    "agent_new",
    "agent_followup",
    "agent_reply",
    "assigned",
    "auto_closed",
    "closed",
    "command_result",
    "reopened",
    "verification",
    "verification_reminder",
    "verification_held",
    "escalation_notice",
    "status_update",
    "verification_unclear",
    "answer_unclear",
    "digest",
    "kpi_report",
    "major_reply",
    "major_update",
)
#: The three parts of a mail, each a template per kind.
PARTS = (".subject.txt", ".txt", ".html")


class BoundedFileLoader(FileSystemLoader):
    """FileSystemLoader that reads through `read_config_file`: a template that is
    a FIFO, a device or too large is refused (FileRefused names it), never read.

    While `kept` is a dict, each source read is kept there by its path: the
    check at load reads the includes of what it has just compiled."""

    kept: dict[str, str] | None = None

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        for searchpath in self.searchpath:
            filename = os.path.join(searchpath, *pieces)
            if os.path.exists(filename):
                break
        else:
            raise TemplateNotFound(template)
        contents = read_config_file(filename)
        mtime = os.path.getmtime(filename)

        def uptodate() -> bool:
            try:
                return os.path.getmtime(filename) == mtime
            except OSError:
                return False

        if self.kept is not None:
            self.kept[os.path.normpath(filename)] = contents
        return contents, os.path.normpath(filename), uptodate


class _Environment(BoundedSandbox):
    """The sandbox with each template's globals as one flat dict, and
    `ticket.id` read as the key it is.

    Jinja keeps globals as a ChainMap over the environment's so that a
    change to those reaches loaded templates; every render then copies the
    ChainMap key by key into the context, a quarter of rendering a mail.
    Nothing here changes globals after loading (a reload builds a new renderer).
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A macro of the templates themselves is called as `Context.call`
        would call it (a macro takes no context: `jinja_pass_arg` is never
        set on it), without asking the sandbox whether template code is safe
        to run, and without the three `hasattr` probes, one of them a failing
        lookup on a bound method that formats an AttributeError each time:
        the names and facts macros run a dozen times a mail. Anything else
        takes the sandbox's checked path."""
        if type(__obj) is Macro:
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
            try:
                return __obj(*args, **kwargs)
            except StopIteration:
                return __context.environment.undefined(
                    "value was undefined because a callable raised a StopIteration exception"
                )
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """The context is plain dicts of data: `ticket.id` is a key. Jinja
        tries the attribute first and takes the key after its AttributeError,
        a fifth of rendering a mail. A key wins over a dict method of the
        same name (the data is what a template means); anything that is not
        a key takes the sandbox's checked path."""
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


class _TemplateCache(dict[Any, Any]):
    """Jinja's cache of loaded templates as a plain dict, its lookups in C:
    every template a mail extends, includes or imports is looked up again at
    each rendering, and Jinja's LRU took a lock and reordered itself each
    time. Emptied when it would pass `capacity`, so it stays bounded: a name
    that reaches a file by another spelling ("./names.txt") is an entry of its
    own, and a template may include a name it was given."""

    capacity = 400  # Jinja's default cache size (its `copy_cache` reads it)

    def __setitem__(self, key: Any, value: Any) -> None:
        if len(self) >= self.capacity:
            self.clear()
        super().__setitem__(key, value)


class TemplateRenderer:
    def __init__(self, root: Path, timezone: str = "Europe/Warsaw") -> None:
        self.root = root
        self.zone = ZoneInfo(timezone)
        if not (root / "en").is_dir():
            raise FileNotFoundError(f"{root}/en: no English templates")
        self._file_loaders: list[BoundedFileLoader] = []
        self._envs = {lang: self._environment(lang) for lang in LANGUAGES}
        self._loaded: dict[tuple[str, str], tuple[Template, Template, Template]] = {}

    def _environment(self, language: str) -> SandboxedEnvironment:
        folders = (language, "en") if language != "en" else ("en",)
        loaders: list[BaseLoader] = [BoundedFileLoader(str(self.root / f)) for f in folders]
        self._file_loaders += loaders  # type: ignore[arg-type]
        env = _Environment(
            loader=ChoiceLoader(loaders),
            autoescape=lambda name: bool(name and name.endswith(".html")),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # A reload builds a new renderer: no stat() per template per mail.
            auto_reload=False,
            bytecode_cache=bytecode_cache(),
        )
        env.cache = _TemplateCache()
        env.filters["when"] = partial(self._when, language)
        return env

    def _when(self, language: str, value: datetime | None) -> str:
        if value is None:
            return "-"
        return human_time(value, self.zone, language)

    def _templates(self, language: str, name: str) -> tuple[Template, Template, Template]:
        found = self._loaded.get((language, name))
        if found is None:
            env = self._envs.get(language) or self._envs["en"]
            found = (
                env.get_template(f"{name}.subject.txt"),
                env.get_template(f"{name}.txt"),
                env.get_template(f"{name}.html"),
            )
            self._loaded[(language, name)] = found
        return found

    def render(self, language: str, name: str, context: dict[str, Any]) -> Rendered:
        subject, text, html = self._templates(language, name)
        ctx = {**context, "language": language}
        return Rendered(
            subject=subject.render(ctx).strip(), text=text.render(ctx), html=html.render(ctx)
        )

    def missing(self) -> list[str]:
        """Templates a language lacks (it would fall back to English)."""
        gaps = []
        for lang in LANGUAGES:
            for kind in KINDS:
                for suffix in PARTS:
                    if not (self.root / lang / f"{kind}{suffix}").is_file():
                        gaps.append(f"{lang}/{kind}{suffix}")
        return gaps

    def check(self) -> None:
        """Every template compiled and every include found now, so a broken
        one is refused at load (exit 78), not at each retry of the first mail
        that needs it (`template_check`)."""
        self._checking().check()

    def problems(self) -> list[str]:
        """What is wrong with the templates, each with its file (and line)."""
        return self._checking().problems()

    def _checking(self) -> TemplateCheck:
        kinds = tuple(f"{kind}{part}" for kind in KINDS for part in PARTS)
        return TemplateCheck(self.root, self._envs, self._file_loaders, kinds, PARTS)
