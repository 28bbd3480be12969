"""YAML as a node tree, so a field's path can be mapped back to its line.

The inventory is parsed with ``yaml.compose`` (not ``safe_load``): the node tree
keeps every key's line, which lets an error about ``devices[1].emulator.machine``
point at the line that holds it. Plain YAML mechanics only; what a problem is
called is :mod:`farm.config.inventory_errors`' job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: the path of a field: mapping keys and list indices, e.g. ("devices", 1, "emulator")
Loc = tuple[int | str, ...]


def parse_yaml(text: str) -> tuple[Node | None, Any]:
    """The node tree and the plain data of one YAML document; raises :class:`yaml.YAMLError`."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return root, data


@dataclass(frozen=True)
class DuplicateKey:
    """A key given twice in one mapping (PyYAML silently keeps the last)."""

    line: int  # 1-based, of the second occurrence
    loc: Loc
    key: str
    first_line: int


def duplicate_keys(node: Node | None, loc: Loc = ()) -> Iterator[DuplicateKey]:
    """Every key that repeats within its mapping, anywhere under ``node``."""
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    yield DuplicateKey(line, (*loc, key.value), key.value, seen[key.value])
                else:
                    seen[key.value] = line
            yield from duplicate_keys(value, (*loc, key.value if isinstance(key, ScalarNode) else "?"))
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield from duplicate_keys(item, (*loc, i))


def dotted(loc: Loc) -> str:
    """``("devices", 1, "emulator", "machine")`` as ``devices[1].emulator.machine``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out


def line_of(root: Node | None, loc: Loc) -> int:
    """The 1-based line of the deepest node of ``loc`` present in the YAML: the key's
    line for a mapping entry, the item's line for a list item. A missing field points
    at the entry that lacks it."""
    if root is None:
        return 1
    node: Node = root
    line: int = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode) and isinstance(part, str):
            entry = _lookup(node, part)
            if entry is None:
                break
            key, node = entry
            line = key.start_mark.line + 1
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _lookup(node: MappingNode, key: str) -> tuple[Node, Node] | None:
    merged: list[Node] = []
    for key_node, value_node in reversed(node.value):  # the last duplicate wins, as in PyYAML
        if isinstance(key_node, ScalarNode):
            if key_node.value == key and key_node.tag != "tag:yaml.org,2002:merge":
                return key_node, value_node
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged += value_node.value if isinstance(value_node, SequenceNode) else [value_node]
    for source in merged:  # "<<: *defaults"
        if isinstance(source, MappingNode) and (entry := _lookup(source, key)) is not None:
            return entry
    return None
