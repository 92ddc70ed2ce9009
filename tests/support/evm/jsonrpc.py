"""A JSON-RPC client for the tests' own calls to anvil: one session, single and batched calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp


class JsonRpcError(AssertionError):
    """The node answered a call with an error object."""


class JsonRpc:
    """Calls to one node over one HTTP session; every answer must be a result, not an error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> JsonRpc:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        await self._session.close()

    async def _post(self, body: object) -> Any:
        assert self._session is not None, "use `async with JsonRpc(url)`"
        async with self._session.post(self.url, json=body) as response:
            return await response.json(content_type=None)

    async def call(self, method: str, *params: Any) -> Any:
        return (await self.batch([(method, list(params))]))[0]

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """The results of `calls`, in order, from one batch request."""
        if not calls:
            return []
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        answers = await self._post(body)
        assert isinstance(answers, list) and len(answers) == len(calls), answers
        by_id = {answer["id"]: answer for answer in answers}
        results = []
        for i, (method, params) in enumerate(calls):
            answer = by_id[i]
            if "error" in answer:
                raise JsonRpcError(f"{method}{params!r:.200}: {answer['error']}")
            results.append(answer["result"])
        return results
