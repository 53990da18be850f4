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

import contextlib
import json
import os
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from hashlib import sha1
from pathlib import Path
from types import CodeType
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    BytecodeCache,
    ChoiceLoader,
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    nodes,
)
from jinja2.bccache import Bucket
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment

from daemon.adapters.template_bounds import BOUNDED_CODE, BoundedSandbox
from daemon.adapters.template_verdict import folder_key
from daemon.config.files import FileRefused, read_config_file
from daemon.core.errors import ConfigError
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
#: Files in a language folder that are templates (compiled at load); an
#: editor's backup or a README beside them is not.
TEMPLATE_SUFFIXES = (".txt", ".html")


#: How people write a moment in a sentence (CLDR patterns; month names come
#: from Babel in the right case: Polish „7 grudnia”, not „7 grudzień”).
DATE_PATTERNS = {
    "pl": "d MMMM y 'r., godz.' HH:mm",
    "en": "EEEE d MMMM y, HH:mm",
}


@lru_cache(maxsize=1024)
def human_time(value: datetime, zone: ZoneInfo, language: str) -> str:
    """„7 grudnia 2026 r., godz. 15:35” / "Monday 7 December 2026, 15:35" in `zone`.

    Memoised: tickets opened together share their deadlines. What Babel's
    `format_datetime` does, with the pattern and locale looked up once: a
    third less a moment (21–30 → 16–18 µs), two or three in every mail with
    a deadline.
    """
    pattern, locale = _date_format(language)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(pattern.apply(value.astimezone(zone), locale))


@lru_cache(maxsize=8)
def _date_format(language: str) -> tuple[Any, Any]:
    """Babel is imported on first use: the intake path (`ingest --queue-only`,
    timed per process) renders nothing and must not pay for its CLDR data."""
    from babel import Locale
    from babel.dates import parse_pattern

    return parse_pattern(DATE_PATTERNS.get(language, DATE_PATTERNS["en"])), Locale.parse(language)


class QuietBytecodeCache(FileSystemBytecodeCache):
    """The cache is only a saving: a full or broken temporary disk must not
    stop templates from loading (and with them the daemon), so a cache file
    that cannot be read or written is compiled, not raised."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)

    def get_bucket(
        self, environment: Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        """Keyed by what the compiled code depends on (the environment's
        options, the template's name and its source), not by its path as in
        Jinja: a new desk (`spocd init` copies the templates), an upgrade
        installed in a new folder or a second desk on the host loads the
        same templates without compiling them, 0.6 s a first command. Code
        taken from another folder is given this template's path, which
        Jinja reports in a rendering error."""
        checksum = self.get_source_checksum(source)
        key = f"{_compiled_as(environment, name)}\0{name}\0{checksum}"
        bucket = Bucket(environment, sha1(key.encode("utf-8")).hexdigest(), checksum)
        self.load_bytecode(bucket)
        if bucket.code is not None and filename and bucket.code.co_filename != filename:
            bucket.code = _filed_as(bucket.code, filename)
        return bucket

    def load_references(self) -> dict[str, list[Reference]]:
        """The references noted for each template source (by checksum):
        checking includes at load then parses no template whose source is
        unchanged (parsing them all takes 0.12 s, loading the compiled code
        0.02 s). One file for all: a file each cost 5 ms to read."""
        try:
            with open(self._references_file(), encoding="utf-8") as file:
                noted = json.load(file)
            return {
                key: [Reference(tuple(names), line, how) for names, line, how in refs]
                for key, refs in noted.items()
            }
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def dump_references(self, noted: dict[str, list[Reference]]) -> None:
        """Written whole and renamed into place: a process reading it meanwhile
        sees the old notes or the new, never half."""
        path = self._references_file()
        temporary = f"{path}.{os.getpid()}"
        data = {key: [[list(r.names), r.line, r.how] for r in refs] for key, refs in noted.items()}
        with contextlib.suppress(OSError):
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump(data, file)
            os.replace(temporary, path)

    def passed(self, key: str) -> bool:
        """Whether templates with this `template_verdict` key passed a check."""
        return os.path.exists(self._verdict_file(key))

    def note_passed(self, key: str) -> None:
        with contextlib.suppress(OSError):
            Path(self._verdict_file(key)).touch()

    def _verdict_file(self, key: str) -> str:
        return os.path.join(self.directory, self.pattern % (f"spocd-passed-{key}",))

    def _references_file(self) -> str:
        # Under Jinja's own pattern: `clear()` removes it with the code.
        return os.path.join(self.directory, self.pattern % (f"spocd-references-{BOUNDED_CODE}",))


def _compiled_as(env: Environment, name: str) -> str:
    """Every environment setting Jinja's compiler reads: code compiled under
    other settings is never taken."""
    escape = env.autoescape(name) if callable(env.autoescape) else env.autoescape
    return repr(
        (
            type(env).__qualname__,
            env.block_start_string,
            env.block_end_string,
            env.variable_start_string,
            env.variable_end_string,
            env.comment_start_string,
            env.comment_end_string,
            env.line_statement_prefix,
            env.line_comment_prefix,
            env.trim_blocks,
            env.lstrip_blocks,
            env.newline_sequence,
            env.keep_trailing_newline,
            sorted(env.extensions),
            env.optimized,
            env.finalize is not None,
            env.is_async,
            escape,
            BOUNDED_CODE,
        )
    )


def _filed_as(code: CodeType, filename: str) -> CodeType:
    """`code` and the functions within it (blocks, macros) under `filename`."""
    consts = tuple(_filed_as(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


@lru_cache(maxsize=1)
def bytecode_cache() -> BytecodeCache | None:
    """Compiled templates kept between processes.

    Every process that loads the runtime compiles all templates (`check`
    refuses a broken one at load), which cost a CLI command or a batch ingest
    0.3 s; from the cache it is a file read per template. Jinja keys each
    entry by the template's path and the checksum of its source, so an edited
    template compiles afresh. Jinja's own per-user folder (mode 0700, owner
    checked) under the temporary directory; where it cannot be made safe,
    templates compile as before.
    """
    try:
        return QuietBytecodeCache()
    except (OSError, RuntimeError):
        return None


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


@dataclass(frozen=True, slots=True)
class Reference:
    """A template another includes, extends or imports: any one of `names`
    will do (`{% include ["a.txt", "b.txt"] %}` takes the first found)."""

    names: tuple[str, ...]
    line: int
    how: str  # "includes" | "extends" | "imports"


_HOW = {nodes.Include: "includes", nodes.Extends: "extends"}


def references(tree: nodes.Template) -> list[Reference]:
    """The templates `tree` needs, with their lines: what
    `jinja2.meta.find_referenced_templates` finds, less an include marked
    `ignore missing` and a name computed at rendering (neither can be
    checked, nor needs to be)."""
    found = []
    kinds = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
    for node in tree.find_all(kinds):
        if isinstance(node, nodes.Include) and node.ignore_missing:
            continue
        names = _constant_names(node.template)
        if names:
            found.append(Reference(names, node.lineno, _HOW.get(type(node), "imports")))
    return found


def _constant_names(expr: nodes.Expr) -> tuple[str, ...]:
    if isinstance(expr, nodes.Const):
        value = expr.value
        items = value if isinstance(value, tuple | list) else (value,)
        return tuple(items) if all(isinstance(v, str) for v in items) else ()
    if isinstance(expr, nodes.Tuple | nodes.List):
        consts = [item.value for item in expr.items if isinstance(item, nodes.Const)]
        if len(consts) == len(expr.items) and all(isinstance(v, str) for v in consts):
            return tuple(consts)
    return ()


class TemplateProblems(ConfigError):
    """The templates cannot be loaded; `problems` names each file (and line)."""

    def __str__(self) -> str:
        count = len(self.problems)
        return f"{count} problem{'' if count == 1 else 's'}" + "".join(
            f"\n    {problem}" for problem in self.problems
        )


class TemplateRenderer:
    def __init__(self, root: Path, timezone: str = "Europe/Warsaw") -> None:
        self.root = root
        self.zone = ZoneInfo(timezone)
        if not (root / "en").is_dir():
            raise FileNotFoundError(f"{root}/en: no English templates")
        self._file_loaders: list[BoundedFileLoader] = []
        self._sources: dict[str, str] = {}
        self._notes = _ReferenceNotes(None)
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
                for suffix in (".subject.txt", ".txt", ".html"):
                    if not (self.root / lang / f"{kind}{suffix}").is_file():
                        gaps.append(f"{lang}/{kind}{suffix}")
        return gaps

    def check(self) -> None:
        """Every template compiled and every include found now, so a broken
        one is refused at load (exit 78), not at each retry of the first mail
        that needs it.

        A check that passed is noted by what it depends on (every file of the
        language folders, the versions: `template_verdict`), so the same
        templates are not compiled again by every process that starts: 3-4 ms
        to read and hash them against 30-40 ms to check. The verdict is noted
        only when the folders did not change while they were checked."""
        cache = bytecode_cache()
        cache = cache if isinstance(cache, QuietBytecodeCache) else None
        key = self._verdict_key() if cache else None
        if cache and key and cache.passed(key):
            return
        found = self.problems()
        if found:
            raise TemplateProblems(found)
        if cache and key and self._verdict_key() == key:
            cache.note_passed(key)

    def _verdict_key(self) -> str | None:
        settings = [repr(KINDS), repr(PARTS)]
        for env in self._envs.values():  # unknown filters and tests fail the compiling
            settings += [_compiled_as(env, name) for name in PARTS]
            settings += [repr(sorted(env.filters)), repr(sorted(env.tests))]
        return folder_key(self.root, LANGUAGES, settings)

    def problems(self) -> list[str]:
        """What is wrong with the templates, each with its file (and line).

        Every template file of every language is compiled, not only the
        mail kinds: an included `footer.txt` fails the same. Then, from each
        kind, every template it includes, extends or imports must be found
        (in the language, or in English, as rendering finds it); an endless
        include is refused too. Whether a template renders with the data
        it is given is not checked here: only a real mail's context tells.
        """
        found: dict[str, None] = {}  # ordered, each problem once
        self._sources = {}
        for loader in self._file_loaders:
            loader.kept = self._sources
        try:
            for lang, env in self._envs.items():
                for name in _template_files(self.root / lang):
                    found.update(dict.fromkeys(_compile_problems(env, name)))
            self._notes = _ReferenceNotes(bytecode_cache())
            for lang, env in self._envs.items():
                walked: set[str] = set()
                for name in (f"{kind}{part}" for kind in KINDS for part in PARTS):
                    found.update(dict.fromkeys(self._walk(lang, env, name, (), walked)))
            self._notes.save()
        finally:
            for loader in self._file_loaders:
                loader.kept = None
            self._sources = {}
        return list(found)

    def _walk(
        self, lang: str, env: Environment, name: str, chain: tuple[str, ...], walked: set[str]
    ) -> Iterator[str]:
        """Problems of `name` and what it needs, as rendering in `lang` finds
        them; each template walked once (`layout.html` is in every kind). A
        kind missing in a language is only a gap (English is used); missing
        in English, it is a problem."""
        if name in walked:
            return
        walked.add(name)
        filename = self._found(lang, name)
        if filename is None:
            if not chain and lang == "en":
                yield f"{self.root / 'en' / name}: missing (every mail kind needs its English text)"
            return
        source = self._sources.get(filename)
        if source is None:
            try:
                source = read_config_file(filename)
            except FileRefused as exc:
                yield f"{exc.filename}: cannot read: {exc}"
                return
            except OSError as exc:
                yield f"{filename}: cannot read: {exc.strerror or exc}"
                return
        for ref in self._notes.references(env, name, source):
            yield from self._follow(lang, env, filename, ref, (*chain, name), walked)

    def _follow(
        self,
        lang: str,
        env: Environment,
        filename: str,
        ref: Reference,
        chain: tuple[str, ...],
        walked: set[str],
    ) -> Iterator[str]:
        where = f"{filename}:{ref.line}"
        cycle = [n for n in ref.names if n in chain]
        if cycle:
            path = " -> ".join((*chain[chain.index(cycle[0]) :], cycle[0]))
            yield f"{where}: {ref.how} {cycle[0]!r} endlessly ({path})"
            return
        present = [n for n in ref.names if self._found(lang, n)]
        if not present:
            folders = f"{lang}/" if lang == "en" else f"{lang}/ or en/"
            listed = " or ".join(repr(n) for n in ref.names)
            yield f"{where}: {ref.how} {listed}, which is not in {folders}"
            return
        yield from self._walk(lang, env, present[0], chain, walked)

    def _found(self, lang: str, name: str) -> str | None:
        """The file `name` is, as the loader finds it: in the language, then
        in English."""
        try:
            pieces = split_template_path(name)
        except TemplateNotFound:
            return None
        for folder in (lang, "en") if lang != "en" else ("en",):
            filename = os.path.join(self.root, folder, *pieces)
            if os.path.exists(filename):
                return os.path.normpath(filename)
        return None


def _template_files(folder: Path) -> list[str]:
    """The template names of a language folder, subfolders included; hidden
    files and folders (an editor's swap file) and other suffixes are not
    templates."""
    names = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        prefix = os.path.relpath(top, folder).replace(os.sep, "/")
        prefix = "" if prefix == "." else f"{prefix}/"
        names += [
            f"{prefix}{f}" for f in files if f.endswith(TEMPLATE_SUFFIXES) and not f.startswith(".")
        ]
    return sorted(names)


def _compile_problems(env: Environment, name: str) -> list[str]:
    """Why `name` does not compile, if it does not."""
    try:
        env.get_template(name)
    except TemplateSyntaxError as exc:
        return [f"{exc.filename or name}:{exc.lineno}: {exc.message}"]
    except FileRefused as exc:
        return [f"{exc.filename}: cannot read: {exc}"]
    except TemplateNotFound:
        return []  # gone meanwhile: the walk says so if it matters
    except OSError as exc:
        return [f"{exc.filename or name}: cannot read: {exc.strerror or exc}"]
    return []


class _ReferenceNotes:
    """`references` of each template source, noted in the bytecode cache's
    folder by the source's checksum: a template is parsed once per edit, not
    once per process."""

    #: Notes kept: every template of a few desks and their recent edits.
    KEEP = 2000

    def __init__(self, cache: BytecodeCache | None) -> None:
        self.cache = cache if isinstance(cache, QuietBytecodeCache) else None
        self.noted = self.cache.load_references() if self.cache else {}
        self.added = False

    def references(self, env: Environment, name: str, source: str) -> list[Reference]:
        key = sha1(source.encode("utf-8")).hexdigest()
        found = self.noted.get(key)
        if found is None:
            try:
                found = references(env.parse(source, name))
            except TemplateSyntaxError:
                found = []  # said by the compiling
            self.noted[key] = found
            self.added = True
        return found

    def save(self) -> None:
        if self.cache and self.added:
            self.cache.dump_references(dict(list(self.noted.items())[-self.KEEP :]))
