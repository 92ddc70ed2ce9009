"""A small YAML writer for the generated files: rule files, promtool tests, Alertmanager config.

PyYAML is not a dependency of the indexer, and these files only hold mappings, lists, strings,
numbers and booleans. Strings that could be read as anything else are single-quoted (nothing
to unescape when reading) or, with control characters, JSON-quoted (a valid YAML double-quoted
scalar); multi-line strings (PromQL) are `|-` blocks, so expressions stay readable in review.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

YamlValue = None | bool | int | float | str | Sequence["YamlValue"] | Mapping[str, "YamlValue"]

# Words (also level:metric:operation names) and durations read back as the same strings.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*(:[A-Za-z0-9_./-]+)*|[0-9]+(ms|s|m|h|d|w|y)")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}
INDENT = "  "


def scalar(value: bool | int | float | str | None) -> str:
    """One scalar on one line: plain when unambiguous, else JSON-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
        return value
    if value.isprintable() and value == value.strip():
        return "'" + value.replace("'", "''") + "'"  # single-quoted: no escapes but ''
    return json.dumps(value, ensure_ascii=False)


def _is_block(value: object) -> bool:
    return isinstance(value, str) and "\n" in value and not value.startswith((" ", "\n"))


def _block(value: str, indent: str) -> list[str]:
    return [f"{indent}{line}" if line else "" for line in value.rstrip("\n").split("\n")]


def _lines(value: YamlValue, indent: str) -> list[str]:
    """The lines of a mapping or list at `indent`."""
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            out += _entry(f"{indent}{scalar(key)}:", item, indent)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            if isinstance(item, Mapping) and item:
                nested = _lines(item, indent + INDENT)
                out.append(f"{indent}- {nested[0].lstrip()}")
                out += nested[1:]
            else:
                out += _entry(f"{indent}-", item, indent)
    else:
        raise TypeError(f"not a mapping or list: {value!r}")
    return out


def _entry(head: str, item: YamlValue, indent: str) -> list[str]:
    if _is_block(item):
        assert isinstance(item, str)
        return [f"{head} |-", *_block(item, indent + INDENT)]
    if isinstance(item, Mapping):
        return [f"{head} {{}}"] if not item else [head, *_lines(item, indent + INDENT)]
    if isinstance(item, Sequence) and not isinstance(item, str):
        return [f"{head} []"] if not item else [head, *_lines(item, indent + INDENT)]
    return [f"{head} {scalar(item)}"]


def dump(document: Mapping[str, YamlValue], header: str = "") -> str:
    """The YAML text of `document`, after `header` (comment lines, each starting with '#')."""
    lines = [header.rstrip("\n")] if header else []
    return "\n".join([*lines, *_lines(document, "")]) + "\n"
