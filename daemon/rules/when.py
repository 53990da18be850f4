"""A rule's `when`, from YAML nodes into condition objects, checked at load.

Each key becomes a condition (`match`), several keys mean all of them, and
every mistake is an issue with its YAML path: an unknown key, a bad regex, a
header name that is none, nesting too deep.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from yaml.nodes import Node, SequenceNode

from daemon.rules.match import (
    AllOf,
    AnyOf,
    AttachmentCondition,
    ChannelCondition,
    Condition,
    ContractCondition,
    Not,
    PatternCondition,
)
from daemon.rules.patterns import compile_regex
from daemon.rules.schema import Reader, child_path
from daemon.rules.values import CHANNELS

#: Deepest nesting of all/any/not accepted in a `when`.
MAX_DEPTH = 16


_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII, no colon
TEXT_FIELDS = ("subject", "body", "from", "from_domain", "to")
CONDITION_KEYS = (
    *TEXT_FIELDS,
    "header",
    "channel",
    "has_attachment",
    "contract",
    "all",
    "any",
    "not",
)


def compile_when(
    reader: Reader,
    node: Node,
    path: str,
    depth: int = 0,
    contracts: Collection[str] | None = None,
) -> Condition | None:
    """A condition mapping; several keys mean all of them must match.
    `contracts`: the contract ids a `contract:` condition may name (None:
    the `contracts:` section is broken, so names are not checked)."""
    if depth > MAX_DEPTH:
        reader.error(node, path, f"conditions nested deeper than {MAX_DEPTH} levels")
        return None
    entries = reader.entries(node, path)
    if entries is None:
        return None
    if not entries:
        reader.error(node, path, "empty condition (leave out `when` to match every message)")
        return None
    parts: list[Condition | None] = []
    for key, key_node, value in entries:
        key_path = child_path(path, key)
        if key not in CONDITION_KEYS:
            expected = ", ".join(CONDITION_KEYS)
            reader.error(key_node, key_path, f"unknown condition '{key}' (expected {expected})")
            parts.append(None)
        else:
            parts.append(_compile_key(reader, key, value, key_path, depth, contracts))
    done = [part for part in parts if part is not None]
    if len(done) != len(parts):
        return None
    return done[0] if len(done) == 1 else AllOf(path, tuple(done))


def _compile_key(
    reader: Reader,
    key: str,
    node: Node,
    path: str,
    depth: int,
    contracts: Collection[str] | None = None,
) -> Condition | None:
    if key in TEXT_FIELDS:
        pattern = compile_regex(reader, node, path)
        return PatternCondition(path, key, pattern) if pattern else None
    if key == "header":
        return _compile_headers(reader, node, path)
    if key == "channel":
        return _compile_channel(reader, node, path)
    if key == "contract":
        return _compile_contract(reader, node, path, contracts)
    if key == "has_attachment":
        expected = reader.boolean(node, path)
        return AttachmentCondition(path, expected) if expected is not None else None
    if key == "not":
        part = compile_when(reader, node, path, depth + 1, contracts)
        return Not(path, part) if part else None
    return _compile_list(reader, key, node, path, depth, contracts)


def _compile_list(
    reader: Reader,
    key: str,
    node: Node,
    path: str,
    depth: int,
    contracts: Collection[str] | None = None,
) -> Condition | None:
    """`all: [...]` / `any: [...]` of condition mappings."""
    parts = reader.each(
        node,
        path,
        lambda item, item_path: compile_when(reader, item, item_path, depth + 1, contracts),
    )
    if parts is None:
        return None
    if not parts:
        reader.error(node, path, f"`{key}` needs at least one condition")
        return None
    return (AllOf if key == "all" else AnyOf)(path, tuple(parts))


def _compile_headers(reader: Reader, node: Node, path: str) -> Condition | None:
    """`header: {Name: regex, ...}`; several headers must all match."""
    entries = reader.entries(node, path)
    if entries is None:
        return None
    if not entries:
        reader.error(node, path, "name at least one header")
        return None
    parts: list[Condition | None] = []
    for name, key_node, value in entries:
        name_path = child_path(path, name)
        if not _HEADER_NAME.fullmatch(name):
            reader.error(key_node, name_path, f"'{name}' is not a header name")
            parts.append(None)
            continue
        pattern = compile_regex(reader, value, name_path)
        parts.append(PatternCondition(name_path, f"header:{name}", pattern) if pattern else None)
    done = [part for part in parts if part is not None]
    if len(done) != len(parts):
        return None
    return done[0] if len(done) == 1 else AllOf(path, tuple(done))


def _compile_channel(reader: Reader, node: Node, path: str) -> Condition | None:
    """`channel: escalation` or `channel: [email, cli]`: exact names, checked at load."""
    if isinstance(node, SequenceNode):
        names = reader.each(node, path, lambda item, p: reader.choice(item, p, CHANNELS))
    else:
        name = reader.choice(node, path, CHANNELS)
        names = [name] if name else None
    if names is None:
        return None
    if not names:
        reader.error(node, path, "name at least one channel")
        return None
    return ChannelCondition(path, tuple(names))


def _compile_contract(
    reader: Reader, node: Node, path: str, contracts: Collection[str] | None
) -> Condition | None:
    """`contract: acme`, `contract: none` (no contract) or a list of them."""
    if isinstance(node, SequenceNode):
        names = reader.strings(node, path)
    else:
        name = reader.string(node, path)
        names = [name] if name else None
    if names is None:
        return None
    if not names:
        reader.error(node, path, "name at least one contract (or none)")
        return None
    unknown = [n for n in names if n != "none" and contracts is not None and n not in contracts]
    if unknown:
        known = ", ".join(contracts or ()) or "no contracts are defined"
        reader.error(node, path, f"unknown contract '{unknown[0]}' (contracts: {known})")
        return None
    return ContractCondition(path, tuple(dict.fromkeys(names)))
