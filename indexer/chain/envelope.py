"""The results of a JSON-RPC batch in call order, from a body the provider may fill with anything.

A provider is untrusted: whatever the shape of its answer (not JSON, not a list, items that are
not objects, ids that are lists, two answers for one id, none for another, no result), the
batch fails as BadChainData, which the client counts as `bad_data` and retries, rather than as
an AttributeError or TypeError that escapes every handler. JSON-RPC error objects become
RpcErrors (RateLimited for the codes and messages providers use for throttling).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from indexer.chain.errors import MethodNotFound, RateLimited, RpcError
from indexer.chain.model import BadChainData
from indexer.chain.redaction import Redactor

RATE_LIMIT_CODES = {-32005, -32029, 429}  # codes providers use for "too many requests"
METHOD_NOT_FOUND = -32601
PERMANENT_CODES = {METHOD_NOT_FOUND, -32602}  # method not found, invalid params: retrying fails
# How providers say they lack a method when they do not answer -32601 ("the method
# eth_getBlockReceipts does not exist/is not available", "Method not supported", "Unsupported
# method"); only with the word "method" or the method's name, so "header not found" is not one.
METHOD_MISSING_WORDS = ("method not found", "not supported", "unsupported", "does not exist")


def method_missing(method: str, code: int | None, message: str) -> bool:
    """Whether a JSON-RPC error says the provider lacks `method` (not that a call failed)."""
    if code == METHOD_NOT_FOUND:
        return True
    text = message.lower()
    named = "method" in text or method.lower() in text
    return named and any(words in text for words in METHOD_MISSING_WORDS)


def json_kind(value: Any) -> str:
    """How JSON names the type of a decoded value, for messages."""
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def rpc_error(method: str, error: Any, redact: Redactor) -> RpcError:
    """The RpcError for a JSON-RPC error object; its message may echo the key, so it is scrubbed."""
    code = error.get("code") if isinstance(error, dict) else None
    message = redact.scrub(str(error.get("message") if isinstance(error, dict) else error))
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    if code in RATE_LIMIT_CODES or "rate limit" in message.lower():
        return RateLimited(f"{method}: {message} (code {code})", None)
    if method_missing(method, code, message):
        return MethodNotFound(f"{method}: JSON-RPC error {code}: {message}")
    return RpcError(
        f"{method}: JSON-RPC error {code}: {message}", retryable=code not in PERMANENT_CODES
    )


def _by_id(answers: list[Any], method: str, source: str) -> dict[int | str, dict[str, Any]]:
    by_id: dict[int | str, dict[str, Any]] = {}
    for answer in answers:
        if not isinstance(answer, dict):
            raise BadChainData(f"{method}: {source} answered a {json_kind(answer)}, not an object")
        key = answer.get("id")
        if isinstance(key, bool) or not isinstance(key, int | str):
            continue  # null or unusable: matched below only as a lone call's answer
        if key in by_id:
            raise BadChainData(f"{method}: {source} answered id {key!r:.20} twice")
        by_id[key] = answer
    return by_id


def results_in_order(
    raw: bytes, ids: list[int], calls: Sequence[tuple[str, list[Any]]], redact: Redactor
) -> list[Any]:
    """Each call's result in call order; error answers raise RpcError, garbage BadChainData."""
    method = calls[0][0] if calls else "none"
    source = redact.public
    try:
        answers = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadChainData(
            f"{method}: malformed JSON from {source}: {redact.snippet(raw, 120)}"
        ) from None
    if isinstance(answers, dict):
        if answers.get("error") is not None and answers.get("id") not in ids:
            raise rpc_error(method, answers["error"], redact)  # one error for the whole batch
        answers = [answers]
    if not isinstance(answers, list):
        raise BadChainData(f"{method}: {source} answered a {json_kind(answers)}, not a batch")
    by_id = _by_id(answers, method, source)
    results = []
    for call_id, (method, _) in zip(ids, calls, strict=True):
        answer = by_id.get(call_id)
        if answer is None and len(ids) == 1 == len(answers) and answers[0].get("id") is None:
            answer = answers[0]  # JSON-RPC answers with id null when it could not read the id
        if answer is None:
            raise BadChainData(f"{method}: {source} sent no answer for id {call_id}")
        if answer.get("error") is not None:
            raise rpc_error(method, answer["error"], redact)
        if "result" not in answer:
            raise BadChainData(f"{method}: {source} sent an answer without a result")
        results.append(answer["result"])
    return results
