"""A deterministic EVM JSON-RPC server: the built-in test and demo chain source.

It serves `eth_chainId`, `eth_blockNumber`, `eth_getBlockByNumber`, `eth_getBlockReceipts`,
`eth_getTransactionReceipt` and `net_version`, single and batched, grows by one block every
`block_time` seconds, reorgs on request, and injects the faults a real provider shows (429
with Retry-After, timeouts, malformed bodies, errors, null blocks, broken parent links,
missing or inconsistent receipts) so the client's handling of each can be tested. Responses
are rendered as text (see `render.py`), never via dicts, because it must serve 50,000
blocks/s on one core and never be a benchmark's bottleneck.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from typing import Any

from aiohttp import web

from indexer.simchain.chain import UNSERVED_FORK, Faults, SimChain, SimChainConfig

__all__ = ["Faults", "SimChain", "SimChainConfig", "build_app", "serve"]

RATE_LIMITED_BODY = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limited"}}'
PARSE_ERROR_BODY = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}'
SIMULATED_ERROR = '{"code":-32000,"message":"simulated internal error"}'


class _RpcServer:
    """Request handling: faults, JSON-RPC dispatch and the /_sim admin endpoints."""

    def __init__(self, chain: SimChain) -> None:
        self.chain = chain
        self.faults = dataclasses.replace(chain.config.faults)
        self.random = random.Random(chain.config.seed)
        self.requests = 0

    def _roll(self, ratio: float) -> bool:
        # No draw for a disabled fault, so enabling one fault does not shift the others.
        return ratio > 0 and self.random.random() < ratio

    async def rpc(self, request: web.Request) -> web.StreamResponse:
        """One HTTP request: a single JSON-RPC call or a batch."""
        self.requests += 1
        faults = self.faults
        if faults.latency_seconds > 0:
            await asyncio.sleep(faults.latency_seconds)
        if self._roll(faults.rate_limit_ratio):
            return web.Response(
                status=429,
                body=RATE_LIMITED_BODY,
                content_type="application/json",
                headers={"Retry-After": str(faults.retry_after_seconds)},
            )
        if self._roll(faults.timeout_ratio):
            await asyncio.sleep(faults.timeout_sleep_seconds)
        failing = self._roll(faults.error_ratio)
        malformed = self._roll(faults.malformed_ratio)
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return web.Response(body=PARSE_ERROR_BODY, content_type="application/json")
        head = self.chain.head()
        parts: list[str] = []
        if isinstance(payload, list) and payload:
            parts.append("[")
            for call in payload:
                self._answer(call, head, failing, parts)
                parts.append(",")
            parts[-1] = "]"
        else:
            self._answer(payload, head, failing, parts)
        text = "".join(parts)
        if malformed:
            text = text[: len(text) // 2]
        return web.Response(body=text.encode(), content_type="application/json")

    def _answer(self, call: Any, head: int, failing: bool, out: list[str]) -> None:
        """Append the response to one call to `out`, as JSON text."""
        # The hot path (eth_getBlockByNumber in a batch) is kept to a few dict lookups.
        if type(call) is not dict:
            out.append(_error("null", -32600, "invalid request"))
            return
        call_id = call.get("id")
        id_text = str(call_id) if type(call_id) is int else json.dumps(call_id)
        if failing:
            out += ('{"jsonrpc":"2.0","id":', id_text, ',"error":', SIMULATED_ERROR, "}")
            return
        method = call.get("method")
        if method == "eth_getBlockByNumber":
            result = self._get_block(call.get("params"), head)
            if result is None:
                out.append(_error(id_text, -32602, "invalid params"))
                return
        elif method == "eth_getBlockReceipts":
            result = self._get_block_receipts(call.get("params"), head)
            if result is None:
                out.append(_error(id_text, -32602, "invalid params"))
                return
        elif method == "eth_getTransactionReceipt":
            result = self._get_transaction_receipt(call.get("params"), head)
            if result is None:
                out.append(_error(id_text, -32602, "invalid params"))
                return
        elif method == "eth_blockNumber":
            result = f'"{hex(head + 1 if self.chain.config.announce_ahead else head)}"'
        elif method == "eth_chainId":
            result = f'"{hex(self.chain.config.chain_id)}"'
        elif method == "net_version":
            result = f'"{self.chain.config.chain_id}"'
        else:
            out.append(_error(id_text, -32601, f"the method {method} does not exist"))
            return
        out += ('{"jsonrpc":"2.0","id":', id_text, ',"result":', result, "}")

    def _get_block(self, params: Any, head: int) -> str | None:
        """The result text of eth_getBlockByNumber, or None if the params are invalid."""
        if type(params) is not list or not params:
            return None
        tag = params[0]
        try:
            number = int(tag, 16)
        except (TypeError, ValueError):
            if tag == "latest" or tag == "pending" or tag == "safe" or tag == "finalized":
                number = head
            elif tag == "earliest":
                number = 0
            else:
                return None
        if number > head or number < 0:
            return "null"
        full = len(params) > 1 and params[1] is True
        faults = self.faults
        if faults.null_block_ratio and self._roll(faults.null_block_ratio):
            return "null"
        text = self.chain.block_text(number, full, head)
        if text is None:  # cannot happen: number was checked against head
            return "null"
        if faults.bad_parent_ratio and self._roll(faults.bad_parent_ratio):
            real = self.chain.block_hash(number - 1)
            garbage = f"0x{self.random.getrandbits(256):064x}"
            text = text.replace(f'"parentHash":"{real}"', f'"parentHash":"{garbage}"', 1)
        return text

    def _block_reference(self, params: Any, head: int) -> int | None:
        """The block number an eth_getBlockReceipts parameter names: a number or tag, a block
        hash, or {"blockNumber": ..} / {"blockHash": ..}; -1 for a block that does not exist,
        None for invalid params."""
        if type(params) is not list or not params:
            return None
        reference = params[0]
        if type(reference) is dict:
            if "blockHash" in reference:
                reference = reference["blockHash"]
            elif "blockNumber" in reference:
                reference = reference["blockNumber"]
        if type(reference) is not str:
            return None
        if len(reference) == 66:
            number = self.chain.block_number_of(reference, head)
            return -1 if number is None else number
        try:
            number = int(reference, 16)
        except ValueError:
            if reference in ("latest", "pending", "safe", "finalized"):
                return head
            return 0 if reference == "earliest" else None
        return number if 0 <= number <= head else -1

    def _get_block_receipts(self, params: Any, head: int) -> str | None:
        """The result text of eth_getBlockReceipts, or None if the params are invalid."""
        number = self._block_reference(params, head)
        if number is None or number < 0:
            return None if number is None else "null"
        faults = self.faults
        if faults.receipts_missing_ratio and self._roll(faults.receipts_missing_ratio):
            return "null" if self.random.random() < 0.5 else "[]"
        if faults.receipts_other_block_ratio and self._roll(faults.receipts_other_block_ratio):
            other, fork = self._other_block(number, head)
            return self.chain.receipts_text(other, head, fork)
        txs = self.chain.txs_per_block
        if (
            txs
            and faults.receipts_wrong_count_ratio
            and self._roll(faults.receipts_wrong_count_ratio)
        ):
            return self.chain.receipts_without(number, self.random.randrange(txs))
        return self.chain.receipts_text(number, head)

    def _get_transaction_receipt(self, params: Any, head: int) -> str | None:
        """The result text of eth_getTransactionReceipt, or None if the params are invalid."""
        if type(params) is not list or not params or type(params[0]) is not str:
            return None
        location = self.chain.tx_location(params[0], head)
        if location is None:
            return "null"
        faults = self.faults
        if faults.receipts_missing_ratio and self._roll(faults.receipts_missing_ratio):
            return "null"
        number, index = location
        if faults.receipts_other_block_ratio and self._roll(faults.receipts_other_block_ratio):
            other, fork = self._other_block(number, head)
            return self.chain.receipt_text(other, index, fork)
        return self.chain.receipt_text(number, index)

    def _other_block(self, number: int, head: int) -> tuple[int, int]:
        """(number, fork version) of a block that is not `number`'s current one: the same
        height in a fork nobody serves, or a neighbour (even odds)."""
        if self.random.random() < 0.5 or head == 0:
            return number, self.chain.fork_version(number) + UNSERVED_FORK
        neighbour = number + 1 if number < head else number - 1
        return neighbour, self.chain.fork_version(neighbour)

    async def set_faults(self, request: web.Request) -> web.Response:
        """POST /_sim/faults: replace the given Faults fields."""
        body = await _json_object(request)
        names = {f.name for f in dataclasses.fields(Faults)}
        for key, value in body.items():
            if key not in names:
                raise _bad_request(f"unknown fault field {key!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise _bad_request(f"{key} must be a non-negative number")
            if key.endswith("_ratio") and value > 1:
                raise _bad_request(f"{key} must be in [0, 1]")
        self.faults = dataclasses.replace(self.faults, **body)
        return web.json_response({"faults": dataclasses.asdict(self.faults)})

    async def reorg(self, request: web.Request) -> web.Response:
        """POST /_sim/reorg {"depth": n}."""
        depth = _positive_int(await _json_object(request), "depth")
        try:
            self.chain.reorg(depth)
        except ValueError as exc:
            raise _bad_request(str(exc)) from exc
        return web.json_response({"head": self.chain.head(), "reorgs": self.chain.reorgs})

    async def mine(self, request: web.Request) -> web.Response:
        """POST /_sim/mine {"blocks": n}."""
        self.chain.mine(_positive_int(await _json_object(request), "blocks"))
        return web.json_response({"head": self.chain.head()})

    async def state(self, request: web.Request) -> web.Response:
        """GET /_sim/state."""
        return web.json_response(
            {
                "head": self.chain.head(),
                "reorgs": self.chain.reorgs,
                "requests": self.requests,
                "faults": dataclasses.asdict(self.faults),
            }
        )


def _error(id_text: str, code: int, message: str) -> str:
    error = json.dumps({"code": code, "message": message}, separators=(",", ":"))
    return f'{{"jsonrpc":"2.0","id":{id_text},"error":{error}}}'


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise _bad_request("body must be JSON") from exc
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object")
    return body


def _positive_int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad_request(f"{key} must be a positive integer")
    return value


def build_app(chain: SimChain) -> web.Application:
    """The aiohttp application serving `chain` on / plus the /_sim admin endpoints."""
    server = _RpcServer(chain)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/", server.rpc)
    app.router.add_post("/_sim/faults", server.set_faults)
    app.router.add_post("/_sim/reorg", server.reorg)
    app.router.add_post("/_sim/mine", server.mine)
    app.router.add_get("/_sim/state", server.state)
    return app


async def serve(config: SimChainConfig, host: str, port: int) -> None:
    """Serve a new chain on host:port until cancelled."""
    # No access log: formatting a line per request would cost more than a batch's blocks.
    runner = web.AppRunner(build_app(SimChain(config)), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
