"""Room for an answer's bytes while the transport reads them: the worker's memory budget, as the
fetch path sees it (chain/ imports no worker code: the worker hands an `AnswerRoom` in through
the context).

An answer may be anything up to rpc_max_response_bytes, whatever the batch expected: a provider
padding its answers sends 60 MiB where 5 KiB were due. So the transport takes room for each chunk
before it keeps it, and gives the read's room back once the answer is decoded; a read without
room waits for it, holding what it already has.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class ReadRoom(Protocol):
    """The room one answer's read holds."""

    async def take(self, size: int) -> None:
        """Wait until `size` more bytes of the answer may be held."""

    def give_back(self) -> None:
        """The answer is decoded: its raw bytes are no longer held."""


class AnswerRoom(Protocol):
    def read(self) -> ReadRoom:
        """Room for one more answer's read."""


# Set by the worker around a batch's fetch; None (tests, head scans): reads are not held back.
answer_room: ContextVar[AnswerRoom | None] = ContextVar("answer_room", default=None)
