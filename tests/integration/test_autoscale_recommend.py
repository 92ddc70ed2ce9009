"""The supervisor's reconcile on real PostgreSQL, recommending only (as for KEDA) or fixed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.store.chains import retire_chain, set_head
from indexer.store.ranges import add_range
from indexer.supervisor import Supervisor, SupervisorOptions
from tests.support.harness import Harness


def replicas(metrics: Metrics, chain: str) -> dict[str, float | None]:
    return {
        kind: metrics.registry.get_sample_value(f"tindexer_replicas_{kind}", {"chain": chain})
        for kind in ("desired", "current", "min", "max")
    }


async def test_recommendations_follow_backlog_bounds_and_deleted_chains(harness: Harness) -> None:
    busy = await harness.add_chain("http://127.0.0.1:9", min_replicas=1, max_replicas=6)
    idle = await harness.add_chain("http://127.0.0.1:9", min_replicas=2, max_replicas=4)
    unscanned = await harness.add_chain("http://127.0.0.1:9", min_replicas=0, max_replicas=4)
    await set_head(harness.pool, busy.id, 9_999)  # 10,000 missing: ceil(10,000 / 2,000) = 5
    await set_head(harness.pool, idle.id, 99)
    async with harness.pool.acquire() as conn, conn.transaction():
        await add_range(conn, idle.id, 0, 99)
    metrics = Metrics(CollectorRegistry())
    options = SupervisorOptions(
        blocks_per_replica=2_000, scale_down_window_seconds=600, recommend_only=True
    )
    supervisor = Supervisor(harness.pool, options, None, metrics)
    await supervisor.tick()
    assert replicas(metrics, busy.config.name) == {
        "desired": 5,
        "current": 5,
        "min": 1,
        "max": 6,
    }
    assert replicas(metrics, idle.config.name) == {"desired": 2, "current": 2, "min": 2, "max": 4}
    assert replicas(metrics, unscanned.config.name)["desired"] == 0  # no head yet: no backlog

    # Half the backlog indexed: the scale-down window holds 5 (600 s have not passed).
    async with harness.pool.acquire() as conn, conn.transaction():
        await add_range(conn, busy.id, 0, 4_999)
    await supervisor.tick()
    assert replicas(metrics, busy.config.name)["desired"] == 5

    assert await retire_chain(harness.pool, idle.config.name) is not None  # as DELETE does
    await supervisor.tick()
    assert replicas(metrics, idle.config.name) == dict.fromkeys(
        ("desired", "current", "min", "max")
    )
    assert supervisor.ticks == 3
