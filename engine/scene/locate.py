"""Find the line of a TOML file where a key path is written (for error messages)."""

from __future__ import annotations

import re

KeyPath = tuple[str | int, ...]

_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def _split_dotted(name: str) -> list[str]:
    return [part.strip().strip("\"'") for part in name.split(".")]


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every table and key path in ``text`` to its 1-based line number.

    Array-of-tables entries get their index: the second ``[[bodies]]`` is ``("bodies", 1)``.
    """
    lines: dict[KeyPath, int] = {}
    array_counts: dict[KeyPath, int] = {}
    table: KeyPath = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _ARRAY_TABLE.match(line):
            name = tuple(_split_dotted(match.group(1)))
            index = array_counts.get(name, -1) + 1
            array_counts[name] = index
            table = (*name, index)
            lines.setdefault(name, number)
            lines[table] = number
        elif match := _TABLE.match(line):
            table = tuple(_split_dotted(match.group(1)))
            lines[table] = number
        elif match := _KEY.match(line):
            lines.setdefault((*table, *_split_dotted(match.group(1))), number)
    return lines


def find_line(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, else of its nearest written ancestor, else None."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
