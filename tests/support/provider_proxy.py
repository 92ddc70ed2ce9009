"""A misbehaving JSON-RPC provider: a real HTTP proxy in front of the simulated chain or anvil.

Real providers sit behind load balancers whose backends lag, resync and throttle; they carry an
API key in their URL and sometimes answer garbage. The proxy forwards every request to a real
upstream and lets a test change what comes back: `answer` replaces whole responses (a gzip bomb,
a 429 with any Retry-After, a malformed body; `first` limits that to the first requests),
`rewrite` edits the upstream's JSON answers (a head that goes back to 0, a hash cut short),
`head_lag` makes it behave as a lagging backend, `delay_seconds` as a slow one, and
`pad_blocks_to` as one padding its answers of blocks and receipts with whitespace.
`unsupported_methods` makes it a provider that lacks some methods: it answers JSON-RPC
-32601 (method not found, in geth's words) for each call of them, inside batches too, and
forwards the rest of the batch. `max_requests_per_second` makes it a provider with a plan: over
that many HTTP requests in the last second it answers 429. `arrivals` holds the time of every
HTTP request (for counts per window) and `blocks_above_head` every block number it was asked
for above the head it reports. Leaving `running()` kills it; running it again on the same port
brings it back.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.waiting import wait_until

KEY_PATH = "/v3/0123456789abcdef0123456789abcdef"  # what a provider's API key looks like

# A whole response instead of the upstream's: return one to answer, None to forward.
Answer = Callable[[list[dict[str, Any]]], web.Response | None]
# One upstream answer (a JSON-RPC response object) edited in place, given its call.
Rewrite = Callable[[dict[str, Any], dict[str, Any]], None]


class ProviderProxy:
    def __init__(
        self,
        upstream: str,
        path: str = KEY_PATH,
        unsupported_methods: Iterable[str] = (),
        name: str = "proxy",
    ) -> None:
        self.upstream = upstream
        self.name = name  # the provider name a test configures it under
        self.path = path
        # What this provider lacks: not a fault, so reset() keeps it.
        self.unsupported_methods: set[str] = set(unsupported_methods)
        self.refused: Counter[str] = Counter()  # calls answered method-not-found, by method
        self.answer: Answer | None = None
        self.rewrite: Rewrite | None = None
        self.head_lag: int | None = None  # answer heads this far behind, and null above them
        self.head_fixed: int | None = None  # answer this head whatever the upstream says
        self.delay_seconds = 0.0  # wait this long before answering anything
        self.pad_blocks_to: int | None = None  # pad answers with blocks to this many bytes
        self.calls: Counter[str] = Counter()
        self.max_requests_per_second: int | None = None  # a plan: 429 above it (last second)
        self.arrivals: list[float] = []  # monotonic time of every HTTP request
        self.throttled = 0  # requests answered 429 for passing max_requests_per_second
        self.blocks_above_head: list[int] = []  # asked for while lagging, above its head
        self.port = 0
        self.url = ""
        self._session: aiohttp.ClientSession | None = None

    def reset(self) -> None:
        self.answer = self.rewrite = None
        self.head_lag = self.head_fixed = None
        self.delay_seconds = 0.0
        self.pad_blocks_to = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path != self.path:
            return web.Response(status=404, text="unknown path: no API key")
        body = await request.read()
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        now = time.monotonic()
        self.arrivals.append(now)
        if self.max_requests_per_second is not None and self.in_window(now - 1.0, now) > (
            self.max_requests_per_second
        ):
            self.throttled += 1
            return web.Response(status=429, headers={"Retry-After": "1"}, text="slow down")
        self.calls.update(str(call.get("method")) for call in calls)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.answer is not None and (response := self.answer(calls)) is not None:
            return response
        if any(call.get("method") in self.unsupported_methods for call in calls):
            return await self._refuse_unsupported(payload, calls)
        return await self._forward(body, calls)

    async def _refuse_unsupported(self, payload: Any, calls: list[dict[str, Any]]) -> web.Response:
        """Method-not-found for each call of an unsupported method; the others forwarded."""
        answers: list[Any] = []
        kept = []
        for call in calls:
            method = call.get("method")
            if method not in self.unsupported_methods:
                kept.append(call)
                continue
            self.refused[str(method)] += 1
            message = f"the method {method} does not exist/is not available"
            error = {"code": -32601, "message": message}
            answers.append({"jsonrpc": "2.0", "id": call.get("id"), "error": error})
        if kept:
            forwarded = await self._forward(json.dumps(kept).encode(), kept)
            if forwarded.status != 200:
                return forwarded
            assert isinstance(forwarded.body, bytes)
            answers += json.loads(forwarded.body)
        return web.json_response(answers if isinstance(payload, list) else answers[0])

    async def _forward(self, body: bytes, calls: list[dict[str, Any]]) -> web.Response:
        """The upstream's answer to `body`, edited by `rewrite` and the head knobs."""
        assert self._session is not None
        async with self._session.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        ) as upstream:
            status, raw = upstream.status, await upstream.read()
        if self.pad_blocks_to is not None and status == 200 and _asks_for_blocks(calls):
            # Whitespace after the JSON: a valid answer, the same blocks, pad_blocks_to bytes.
            raw += b" " * max(0, self.pad_blocks_to - len(raw))
        if status != 200 or not (self.rewrite or self._lying_about_head()):
            return web.Response(status=status, body=raw, content_type="application/json")
        answers = json.loads(raw)
        listed = answers if isinstance(answers, list) else [answers]
        by_id = {call.get("id"): call for call in calls}
        head = await self._reported_head()
        for answer in listed:
            call = by_id.get(answer.get("id"), {})
            if self._apply_head(call, answer, head):
                self.blocks_above_head.append(int(call["params"][0], 16))
            if self.rewrite is not None:
                self.rewrite(call, answer)
        return web.json_response(answers)

    def in_window(self, start: float, end: float) -> int:
        """HTTP requests that arrived in start < t <= end."""
        return sum(1 for t in self.arrivals if start < t <= end)

    def busiest_window(self, seconds: float) -> int:
        """The most HTTP requests that arrived within any `seconds`-long window."""
        most, first = 0, 0
        for last, at in enumerate(self.arrivals):
            while at - self.arrivals[first] >= seconds:
                first += 1
            most = max(most, last - first + 1)
        return most

    async def more_calls(self, method: str, count: int, timeout: float = 30) -> None:
        """Wait until `count` more calls of `method` arrive (head scans: eth_blockNumber)."""
        target = self.calls[method] + count

        async def arrived() -> bool:
            return self.calls[method] >= target

        await wait_until(arrived, timeout, f"{count} more {method} calls", interval=0.02)

    def _lying_about_head(self) -> bool:
        return self.head_lag is not None or self.head_fixed is not None

    async def _reported_head(self) -> int | None:
        if self.head_fixed is not None:
            return self.head_fixed
        if self.head_lag is None:
            return None
        assert self._session is not None
        query = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        async with self._session.post(self.upstream, json=query) as upstream:
            real = int((await upstream.json())["result"], 16)
        return max(0, real - self.head_lag)

    @staticmethod
    def _apply_head(call: dict[str, Any], answer: dict[str, Any], head: int | None) -> bool:
        """A lagging backend: its head is `head`, and it has no block above it.

        True when the call asked for a block above that head (answered null).
        """
        if head is None or "result" not in answer:
            return False
        if call.get("method") == "eth_blockNumber":
            answer["result"] = hex(head)
        elif call.get("method") in ("eth_getBlockByNumber", "eth_getBlockReceipts"):
            tag = call.get("params", [None])[0]
            if isinstance(tag, str) and tag.startswith("0x") and int(tag, 16) > head:
                answer["result"] = None
                return True
        return False

    @asynccontextmanager
    async def running(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve until the block ends; yields the provider URL, key path included."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        self._session = aiohttp.ClientSession()
        try:
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://{host}:{self.port}{self.path}"
            yield self.url
        finally:
            await self._session.close()
            await runner.cleanup()


def _asks_for_blocks(calls: list[dict[str, Any]]) -> bool:
    """Whether a batch asks for full blocks or block receipts (what a range fetches)."""
    return any(
        call.get("method") == "eth_getBlockReceipts"
        or (call.get("method") == "eth_getBlockByNumber" and call.get("params", [0, 0])[1] is True)
        for call in calls
    )


def gzip_bomb(decoded_bytes: int) -> Answer:
    """Every call answered by a small gzip body that decodes to `decoded_bytes` of JSON."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    parts = [compressor.compress(b'{"jsonrpc":"2.0","id":1,"result":"0x')]
    step = b"0" * (1024 * 1024)  # compressed a MiB at a time: the filler never sits in memory
    for _ in range(decoded_bytes // len(step)):
        parts.append(compressor.compress(step))
    parts += [compressor.compress(b"0" * (decoded_bytes % len(step))), compressor.compress(b'"}')]
    compressed = b"".join([*parts, compressor.flush()])

    def answer(calls: list[dict[str, Any]]) -> web.Response:
        return web.Response(
            body=compressed,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    return answer


def raw_answer(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    """Every call answered with exactly these bytes."""

    def answer(calls: list[dict[str, Any]]) -> web.Response:
        return web.Response(status=status, body=body, headers=headers)

    return answer


def first(requests: int, answer: Answer) -> Answer:
    """`answer` for the first `requests` requests, then forward to the upstream again."""
    remaining = requests

    def limited(calls: list[dict[str, Any]]) -> web.Response | None:
        nonlocal remaining
        if remaining <= 0:
            return None
        remaining -= 1
        return answer(calls)

    return limited
