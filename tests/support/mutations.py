"""Edits to a decoded JSON-RPC block, to make one bad in exactly one way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Mutation = Callable[[dict[str, Any]], None]


def set_field(path: str, value: Any) -> Mutation:
    """Set the field at a dotted path ("transactions.0.value") to `value`; KeyError deletes it.

    The root may be a list too (a block's receipts: "0.logs.1.topics").
    """

    def mutate(raw: Any) -> None:
        target: Any = raw
        *parents, last = (int(key) if key.isdigit() else key for key in path.split("."))
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value

    return mutate
