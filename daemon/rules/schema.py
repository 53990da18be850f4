"""Reading rules.yaml as YAML nodes, with a position for every complaint.

PyYAML's node API (`yaml.compose`) keeps the line and column of every key and
value, so a validation problem can name the exact spot, and the resolved tag of
a plain scalar does not get in the way (`yes` stays the word "yes" where a
string is expected). `Reader` walks nodes and collects every problem instead of
stopping at the first one, so an admin fixes a file in one round.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

T = TypeVar("T")

#: Ceiling on the node count of the document with aliases expanded: guards the
#: validator against "billion laughs" alias bombs.
MAX_NODES = 200_000

#: libyaml's loader when PyYAML has it (ten times faster; the same nodes and
#: marks). A file it refuses is read again by the pure-Python loader, whose
#: messages say more ("found character '\t'").
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_NULL = "tag:yaml.org,2002:null"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class RuleIssue:
    """One problem in a rules file, where it is and what is wrong.

    `line` and `column` are 1-based; `path` is the YAML path such as
    `rules[3].when.subject` (list indexes 0-based), empty for the document.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RulesError(ValueError):
    """A rules file that cannot be used; `.issues` lists every problem found."""

    def __init__(self, issues: Iterable[RuleIssue]) -> None:
        self.issues: list[RuleIssue] = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def child_path(path: str, key: str | int) -> str:
    """YAML path of a mapping key or list index below `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    part = key if _PLAIN_KEY.fullmatch(key) else '"' + key.replace('"', '\\"') + '"'
    if not path:
        return part
    return f"{path}.{part}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{part}]"


def describe_node(node: Node) -> str:
    """What a node is, in the words of an error message ("a list", "null")."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    names = {_NULL: "null", _BOOL: "true/false", _INT: "a number", _STR: "a string"}
    if node.tag == "tag:yaml.org,2002:float":
        return "a number"
    return names.get(node.tag, "a string")


@dataclass
class Reader:
    """Collects issues while the loader walks the document."""

    filename: str
    issues: list[RuleIssue] = field(default_factory=list)

    def error(self, node: Node | None, path: str, message: str) -> None:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.issues.append(RuleIssue(self.filename, line, column, path, message))

    def error_at(self, line: int, column: int, path: str, message: str) -> None:
        self.issues.append(RuleIssue(self.filename, line, column, path, message))

    # -- document -------------------------------------------------------------

    def compose(self, text: str) -> Node | None:
        """Parse YAML text into a node tree, or record why it cannot be parsed."""
        try:
            root = _compose(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            detail = ": ".join(part for part in (exc.context, exc.problem) if part)
            self.error_at(line, column, "", f"YAML syntax error: {detail}")
            return None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
            self.error_at(line, column, "", f"YAML syntax error: {exc.reason}")
            return None
        except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is marked
            self.error_at(1, 1, "", f"YAML syntax error: {exc}")
            return None
        except RecursionError:
            self.error_at(1, 1, "", "YAML syntax error: nesting is too deep")
            return None
        if root is None:
            self.error_at(1, 1, "", "the file is empty")
            return None
        if _expanded_size(root, {}) > MAX_NODES:
            self.error(root, "", f"the document expands to more than {MAX_NODES} nodes")
            return None
        return root

    # -- structure ------------------------------------------------------------

    def mapping(
        self,
        node: Node,
        path: str,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> dict[str, Node] | None:
        """Fields of a mapping with fixed keys; unknown and missing keys are issues.

        Returns the value node of every known key present, or None if `node` is
        no mapping at all.
        """
        entries = self.entries(node, path)
        if entries is None:
            return None
        known = set(required) | set(optional)
        fields: dict[str, Node] = {}
        for key, key_node, value in entries:
            if key in known:
                fields[key] = value
            else:
                self.error(key_node, child_path(path, key), _unknown_key(key, known))
        for key in required:
            if key not in fields:
                self.error(node, path, f"missing key '{key}'")
        return fields

    def entries(self, node: Node, path: str) -> list[tuple[str, Node, Node]] | None:
        """(key, key node, value node) of a mapping with free keys, in file order.

        Duplicate and non-string keys are issues and are left out.
        """
        if not isinstance(node, MappingNode):
            self.error(node, path, f"expected a mapping, got {describe_node(node)}")
            return None
        seen: dict[str, Node] = {}
        result: list[tuple[str, Node, Node]] = []
        for key_node, value in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _NULL:
                self.error(key_node, path, "keys must be plain strings")
                continue
            key = key_node.value
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.error(key_node, path, "merge keys ('<<') are not supported")
                continue
            if key in seen:
                first = seen[key].start_mark.line + 1
                self.error(
                    key_node, child_path(path, key), f"duplicate key (first at line {first})"
                )
                continue
            seen[key] = key_node
            result.append((key, key_node, value))
        return result

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        """Items of a list, or None (an issue) if `node` is no list."""
        if not isinstance(node, SequenceNode):
            self.error(node, path, f"expected a list, got {describe_node(node)}")
            return None
        return list(node.value)

    def each(self, node: Node, path: str, parse: Callable[[Node, str], T | None]) -> list[T] | None:
        """Parse every item of a list; None if the list or any item is bad."""
        items = self.sequence(node, path)
        if items is None:
            return None
        parsed = [parse(item, child_path(path, index)) for index, item in enumerate(items)]
        if any(value is None for value in parsed):
            return None
        return [value for value in parsed if value is not None]

    def optional(
        self,
        fields: Mapping[str, Node],
        key: str,
        path: str,
        parse: Callable[[Node, str], T | None],
        default: T | None = None,
    ) -> T | None:
        """parse(fields[key]) with its path, or `default` when the key is absent.

        None means "invalid" only when the key is present: the caller checks
        `key in fields` where the difference matters.
        """
        node = fields.get(key)
        return default if node is None else parse(node, child_path(path, key))

    # -- scalars --------------------------------------------------------------

    def string(self, node: Node, path: str) -> str | None:
        """A non-empty scalar as the text written (so `yes`/`no`/`on` stay words)."""
        if not isinstance(node, ScalarNode) or node.tag == _NULL:
            self.error(node, path, f"expected a string, got {describe_node(node)}")
            return None
        if not node.value.strip():
            self.error(node, path, "must not be empty")
            return None
        return str(node.value)

    def strings(self, node: Node, path: str) -> list[str] | None:
        return self.each(node, path, self.string)

    def boolean(self, node: Node, path: str) -> bool | None:
        if not isinstance(node, ScalarNode) or node.tag != _BOOL:
            self.error(node, path, f"expected true or false, got {describe_node(node)}")
            return None
        return node.value.lower() in {"true", "yes", "on"}

    def integer(self, node: Node, path: str, *, minimum: int = 0, maximum: int) -> int | None:
        """A whole number in [minimum, maximum]. Every number of the file has
        a ceiling: one the code cannot compute with (a date 10^9 days away)
        would pass the check and then fail every mail that meets it."""
        if not isinstance(node, ScalarNode) or node.tag != _INT:
            self.error(node, path, f"expected a whole number, got {describe_node(node)}")
            return None
        try:
            value = int(yaml.constructor.SafeConstructor().construct_yaml_int(node))
        except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
            self.error(node, path, f"must be between {minimum} and {maximum}")
            return None
        if value < minimum:
            self.error(node, path, f"must be at least {minimum}")
            return None
        if value > maximum:
            self.error(node, path, f"must be at most {maximum}")
            return None
        return value

    def choice(self, node: Node, path: str, allowed: Iterable[str]) -> str | None:
        """One word from a fixed vocabulary."""
        options = list(allowed)
        value = self.string(node, path)
        if value is None:
            return None
        if value not in options:
            self.error(node, path, f"'{value}' is not one of {', '.join(options)}")
            return None
        return value


def _unknown_key(key: str, known: set[str]) -> str:
    if not known:
        return f"unknown key '{key}'"
    return f"unknown key '{key}' (expected one of {', '.join(sorted(known))})"


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Node count with aliases counted as often as they are used (memoised)."""
    cached = memo.get(id(node))
    if cached is not None:
        return cached
    memo[id(node)] = MAX_NODES + 1  # a node that contains itself is "too big"
    if isinstance(node, MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, SequenceNode):
        size = 1 + sum(_expanded_size(item, memo) for item in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def _compose(text: str) -> Node | None:
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass  # the slow loader raises it again, in better words
    return yaml.compose(text, Loader=yaml.SafeLoader)
