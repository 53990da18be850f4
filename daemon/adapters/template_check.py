"""The check of the templates at load: every file compiled, every include,
extends and import followed as rendering finds it, each problem named with
its file and line; a check that passed is noted by what it depends on
(`template_verdict`) so the next process with the same files takes it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha1
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import BytecodeCache, Environment, TemplateNotFound, TemplateSyntaxError, nodes
from jinja2.loaders import split_template_path

from daemon.adapters.template_bounds import BOUNDED_CODE
from daemon.adapters.template_cache import QuietBytecodeCache, bytecode_cache, compiled_as
from daemon.adapters.template_verdict import folder_key
from daemon.config.files import FileRefused, read_config_file
from daemon.core.errors import ConfigError

if TYPE_CHECKING:
    from daemon.adapters.templates import BoundedFileLoader

#: Files in a language folder that are templates (compiled at load); an
#: editor's backup or a README beside them is not.
TEMPLATE_SUFFIXES = (".txt", ".html")


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


class TemplateCheck:
    """One check of a renderer's templates: `root`'s language folders as the
    environments `envs` load them (through `loaders`, whose sources it reads
    once), starting from the templates named `kinds` (every part of every
    mail kind); `parts` are the suffixes those names end in."""

    def __init__(
        self,
        root: Path,
        envs: Mapping[str, Environment],
        loaders: Sequence[BoundedFileLoader],
        kinds: Sequence[str],
        parts: Sequence[str],
    ) -> None:
        self.root = root
        self.envs = envs
        self.loaders = loaders
        self.kinds = tuple(kinds)
        self.parts = tuple(parts)
        self._sources: dict[str, str] = {}
        self._notes = _ReferenceNotes(None)

    def check(self) -> None:
        """Raises TemplateProblems with every problem found.

        A check that passed is noted by what it depends on (every file of the
        language folders, the versions: `template_verdict`), so the same
        templates are not compiled again by every process that starts: 3-4 ms
        to read and hash them against 30-40 ms to check. The verdict is noted
        only when the folders did not change while they were checked."""
        cache = bytecode_cache()
        cache = cache if isinstance(cache, QuietBytecodeCache) else None
        key = self._verdict_key() if cache else None
        verdict = cache.own_file(f"spocd-passed-{key}") if cache and key else None
        if verdict and os.path.exists(verdict):
            return
        found = self.problems()
        if found:
            raise TemplateProblems(found)
        if verdict and self._verdict_key() == key:
            with contextlib.suppress(OSError):
                Path(verdict).touch()

    def _verdict_key(self) -> str | None:
        settings = [repr(self.kinds), repr(self.parts)]
        for env in self.envs.values():  # unknown filters and tests fail the compiling
            settings += [compiled_as(env, name) for name in self.parts]
            settings += [repr(sorted(env.filters)), repr(sorted(env.tests))]
        return folder_key(self.root, tuple(self.envs), settings)

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
        for loader in self.loaders:
            loader.kept = self._sources
        try:
            for lang, env in self.envs.items():
                for name in _template_files(self.root / lang):
                    found.update(dict.fromkeys(_compile_problems(env, name)))
            self._notes = _ReferenceNotes(bytecode_cache())
            for lang, env in self.envs.items():
                walked: set[str] = set()
                for name in self.kinds:
                    found.update(dict.fromkeys(self._walk(lang, env, name, (), walked)))
            self._notes.save()
        finally:
            for loader in self.loaders:
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
        quiet = cache if isinstance(cache, QuietBytecodeCache) else None
        self.path = quiet.own_file(f"spocd-references-{BOUNDED_CODE}") if quiet else None
        self.noted = self._load() if self.path else {}
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
        if self.path and self.added:
            self._dump(dict(list(self.noted.items())[-self.KEEP :]))

    def _load(self) -> dict[str, list[Reference]]:
        """One file for all templates: a file each cost 5 ms to read.
        Parsing them all takes 0.12 s, loading the compiled code 0.02 s."""
        assert self.path is not None
        try:
            with open(self.path, encoding="utf-8") as file:
                noted = json.load(file)
            return {
                key: [Reference(tuple(names), line, how) for names, line, how in refs]
                for key, refs in noted.items()
            }
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _dump(self, noted: dict[str, list[Reference]]) -> None:
        """Written whole and renamed into place: a process reading it meanwhile
        sees the old notes or the new, never half."""
        assert self.path is not None
        temporary = f"{self.path}.{os.getpid()}"
        data = {key: [[list(r.names), r.line, r.how] for r in refs] for key, refs in noted.items()}
        with contextlib.suppress(OSError):
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump(data, file)
            os.replace(temporary, self.path)
