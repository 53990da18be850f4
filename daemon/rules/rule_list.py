"""Parser of the `rules:` list of rules.yaml: each rule's name, `when` and `set`.

Split from `sections` (issue 13: one job per module): the rule list is the
largest section and the only one that compiles conditions. Group names in
`set` are checked by `Sections.group_ref`, against the groups that parsed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from yaml.nodes import MappingNode, Node

from daemon.rules.match import Always, Condition
from daemon.rules.model import ACTION_KEYS, Actions, Group, Rule
from daemon.rules.schema import Reader
from daemon.rules.sections import Sections
from daemon.rules.values import LANGUAGES, LEVELS, PRIORITIES
from daemon.rules.values import address as parse_address
from daemon.rules.when import compile_when


@dataclass(slots=True)
class RuleList:
    """Parser of the `rules:` section; records its issues on the sections' reader."""

    sections: Sections
    contracts: Collection[str] | None = ()

    @property
    def reader(self) -> Reader:
        return self.sections.reader

    def rules(
        self,
        node: Node | None,
        groups: Mapping[str, Group] | None,
        contracts: Collection[str] | None = (),
    ) -> tuple[Rule, ...] | None:
        """`contracts`: the ids `when`/`set` may name (None: unchecked)."""
        if node is None:
            return ()
        self.contracts = contracts
        names: dict[str, int] = {}
        parsed = self.reader.each(
            node, "rules", lambda item, path: self._rule(item, path, groups, names)
        )
        return tuple(parsed) if parsed is not None else None

    def _rule(
        self, node: Node, path: str, groups: Mapping[str, Group] | None, names: dict[str, int]
    ) -> Rule | None:
        fields = self.reader.mapping(
            node, path, required=("name", "set"), optional=("when", "continue")
        )
        if fields is None:
            return None
        read = partial(self.reader.optional, fields, path=path)
        name = read("name", parse=partial(self._rule_name, names=names))
        always: Condition = Always(f"{path}.when")
        before = len(self.reader.issues)
        condition = read(
            "when",
            parse=partial(compile_when, self.reader, contracts=self.contracts),
            default=always,
        )
        if name is not None:  # a refused pattern names its rule, not only its place
            issues = self.reader.issues
            for index in range(before, len(issues)):
                if issues[index].message.startswith("regex refused"):
                    message = f"rule '{name}': {issues[index].message}"
                    issues[index] = replace(issues[index], message=message)
        actions = read("set", parse=partial(self._actions, groups=groups))
        continues = read("continue", parse=self.reader.boolean, default=False)
        if name is None or condition is None or actions is None or continues is None:
            return None
        return Rule(name, condition, actions, continues=continues, path=path)

    def _rule_name(self, node: Node, path: str, names: dict[str, int]) -> str | None:
        """A rule name, unique in the file (the trace and events refer to it)."""
        name = self.reader.string(node, path)
        if name is None:
            return None
        if name in names:
            self.reader.error(node, path, f"duplicate rule name (first at line {names[name]})")
            return None
        names[name] = node.start_mark.line + 1
        return name

    def _actions(self, node: Node, path: str, groups: Mapping[str, Group] | None) -> Actions | None:
        fields = self.reader.mapping(node, path, optional=ACTION_KEYS)
        if fields is None:
            return None
        if isinstance(node, MappingNode) and not node.value:
            self.reader.error(node, path, "set needs at least one action")
            return None
        values: dict[str, Any] = {
            key: self._action(key, value, f"{path}.{key}", groups) for key, value in fields.items()
        }
        if None in values.values():
            return None
        if "assignee" in values and not self._assignee_fits(
            fields["assignee"],
            f"{path}.assignee",
            str(values["assignee"]),
            values.get("group"),
            groups,
        ):
            return None
        return Actions(**values)

    def _action(
        self, key: str, node: Node, path: str, groups: Mapping[str, Group] | None
    ) -> object | None:
        reader = self.reader
        if key in ("impact", "urgency"):
            return reader.choice(node, path, LEVELS)
        if key == "priority":
            return reader.choice(node, path, PRIORITIES)
        if key == "language":
            return reader.choice(node, path, LANGUAGES)
        if key == "group":
            return self.sections.group_ref(node, path, groups)
        if key == "assignee":
            return parse_address(reader, node, path)
        if key == "tags":
            tags = reader.strings(node, path)
            return tuple(dict.fromkeys(tag.strip() for tag in tags)) if tags is not None else None
        if key == "ignore":
            return reader.boolean(node, path)
        if key == "contract":
            return self._contract(node, path)
        return reader.string(node, path)  # category

    def _assignee_fits(
        self,
        node: Node,
        path: str,
        assignee: str,
        group: object,
        groups: Mapping[str, Group] | None,
    ) -> bool:
        """An assignee must be an agent, and in the group the same rule sets."""
        if groups is None:
            return True
        if not any(assignee in g for g in groups.values()):
            self.reader.error(node, path, f"'{assignee}' is no lead or member of any group")
            return False
        if isinstance(group, str) and group in groups and assignee not in groups[group]:
            self.reader.error(node, path, f"'{assignee}' is not in group '{group}'")
            return False
        return True

    def _contract(self, node: Node, path: str) -> str | None:
        """`set: {contract: ID}` (a contract of the file) or `none`."""
        name = self.reader.string(node, path)
        if name is None or name == "none" or self.contracts is None:
            return name
        if name not in self.contracts:
            known = ", ".join(self.contracts) or "no contracts are defined"
            self.reader.error(node, path, f"unknown contract '{name}' (contracts: {known})")
            return None
        return name
