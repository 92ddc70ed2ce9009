"""One trace from a scheduler batch through IndexRange to fetch and store; logs carry it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporter.logs import configure_logging
from exporter.tracing import configure_tracing
from indexer.temporal_client import connect_temporal
from indexer.worker import running_worker
from tests.support.harness import Harness, fully_indexed
from tests.support.simchain import set_faults
from tests.support.waiting import wait_until


def _root(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> int:
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
    return span.context.span_id


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """Names from the span up to its root, following parent links within the trace."""
    names = [span.name]
    trace_id = span.context.trace_id
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        assert span.context.trace_id == trace_id  # one trace along the whole path
        names.append(span.name)
    return names


async def test_scheduler_batch_to_fetch_and_store_is_one_trace_and_logs_carry_it(
    harness: Harness, temporal_address: str, sim_chain: Callable[..., str]
) -> None:
    spans = InMemorySpanExporter()
    configure_tracing("tindexer-test", exporter=spans)
    log_lines = io.StringIO()
    handler = configure_logging(
        logging.WARNING, json_lines=True, handler=logging.StreamHandler(log_lines)
    )
    try:
        url = sim_chain(backlog=400, txs_per_block=1)
        await set_faults(url, rate_limit_ratio=0.3, retry_after_seconds=0.01)
        row = await harness.add_chain(url, blocks_per_workflow=100, catchup_threshold=100)
        chain = row.config.name
        client = await connect_temporal(temporal_address)
        async with running_worker(
            client, harness.pool, harness.task_queue, metrics=harness.metrics
        ):
            await harness.client.start_workflow(
                "HeadScan",
                {"chain": chain, "scans": 0},
                id=f"headscan:{chain}",
                task_queue=harness.task_queue,
            )
            await wait_until(lambda: fully_indexed(harness, chain, 399), 60, "backfill")
    finally:
        logging.getLogger().removeHandler(handler)

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    fetches = [
        s for s in finished if s.name == "rpc.fetch_blocks" and s.attributes["chain"] == chain
    ]
    stores = [
        s for s in finished if s.name == "postgres.store_range" and s.attributes["chain"] == chain
    ]
    assert len(fetches) >= 4 and len(stores) >= 4
    batches = []
    for span in fetches + stores:
        path = ancestors(span, by_id)
        assert path[1:4] == [
            "RunActivity:index_range",
            "StartActivity:index_range",
            "StartWorkflow:IndexRange",
        ], path
        assert path[-1] == "schedule_batch", path  # each batch roots its own trace
        batches.append(by_id[_root(span, by_id)])
    scheduler_batches = [b for b in batches if b.attributes["mode"] == "scheduler"]
    assert scheduler_batches, "no fetch descends from a Scheduler batch"
    # The batch links back to the Scheduler's start_ranges activity that ran it.
    batch = scheduler_batches[0]
    linked = {link.context.span_id for link in batch.links}
    assert any(by_id[i].name == "RunActivity:start_ranges" for i in linked if i in by_id)
    store = next(s for s in stores if s.context.trace_id == batch.context.trace_id)
    assert (
        store.attributes["range.end"] - store.attributes["range.start"] + 1
        == (store.attributes["blocks"])
    )

    # A rate-limit warning logged inside a fetch carries the trace and span of the fetch's
    # batch (a range is fetched batch by batch, each batch a child span of the range's fetch).
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    limited = [r for r in records if r.get("source") == "rpc" and r.get("chain") == chain]
    assert limited, "no rate-limit log line"
    fetch_spans = {s.context.span_id for s in fetches}
    fetch_batches = [
        s
        for s in finished
        if s.name == "rpc.fetch_batch" and s.parent is not None and s.parent.span_id in fetch_spans
    ]
    assert fetch_batches
    fetch_ids = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"))
        for s in fetch_batches
    }
    assert any((r["trace_id"], r["span_id"]) in fetch_ids for r in limited)
    assert all(r["wait_seconds"] >= 0 for r in limited)
