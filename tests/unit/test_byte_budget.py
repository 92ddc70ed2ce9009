"""The worker's byte budget: reservations, corrections, an oversized batch alone, release on
every exit, first come first served, and the metrics it keeps."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.worker_budget import (
    INITIAL_BYTES_PER_BLOCK,
    ByteBudget,
)


async def settle() -> None:
    """Let every ready task run until none is left ready (no sleeps with a duration)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_reservations_fit_until_the_budget_then_wait_for_a_release() -> None:
    metrics = Metrics(CollectorRegistry())
    budget = ByteBudget(100, metrics)
    first = await budget.reserve(60)
    second = await budget.reserve(40)
    assert budget.in_flight == 100
    third = asyncio.create_task(budget.reserve(10))
    await settle()
    assert not third.done()
    first.release()
    await settle()
    assert third.done() and budget.in_flight == 50
    third.result().release()
    second.release()
    assert budget.in_flight == 0 and budget.high_water == 100
    sample = metrics.registry.get_sample_value
    assert sample("tindexer_worker_memory_budget_bytes") == 100
    assert sample("tindexer_worker_in_flight_bytes") == 0
    assert sample("tindexer_worker_budget_wait_seconds_total") > 0


async def test_a_correction_holds_the_measured_size_and_frees_room_when_smaller() -> None:
    budget = ByteBudget(100)
    estimate = await budget.reserve(90)
    waiting = asyncio.create_task(budget.reserve(50))
    await settle()
    assert not waiting.done()
    estimate.correct(30)  # the answer was smaller than guessed
    await settle()
    assert waiting.done() and budget.in_flight == 80
    estimate.correct(70)  # or larger: held without waiting, the budget is passed for a while
    assert budget.in_flight == 120 and budget.high_water == 120
    estimate.release()
    estimate.release()  # idempotent
    estimate.correct(5)  # after release: nothing
    assert budget.in_flight == 50


async def test_a_batch_larger_than_the_whole_budget_proceeds_alone() -> None:
    budget = ByteBudget(100)
    small = await budget.reserve(10)
    huge = asyncio.create_task(budget.reserve(1_000))
    await settle()
    assert not huge.done()  # waits until nothing else is held...
    behind = asyncio.create_task(budget.reserve(10))
    await settle()
    assert not behind.done()  # ...and what comes after it waits its turn (no starvation)
    small.release()
    await settle()
    assert huge.done() and not behind.done() and budget.in_flight == 1_000
    huge.result().release()
    await settle()
    assert behind.done() and budget.in_flight == 10
    # Alone from the start, it does not wait at all.
    behind.result().release()
    alone = await budget.reserve(5_000)
    assert budget.in_flight == 5_000 and budget.largest_reservation == 5_000
    alone.release()


async def test_a_cancelled_waiter_takes_nothing_and_unblocks_those_behind_it() -> None:
    budget = ByteBudget(100)
    held = await budget.reserve(80)
    big = asyncio.create_task(budget.reserve(50))
    small = asyncio.create_task(budget.reserve(20))
    await settle()
    assert not big.done() and not small.done()  # small waits behind big
    big.cancel()
    await settle()
    assert big.cancelled() and small.done() and budget.in_flight == 100
    small.result().release()
    held.release()
    assert budget.in_flight == 0


async def test_reserved_releases_on_error_and_on_cancellation() -> None:
    budget = ByteBudget(100)
    with pytest.raises(RuntimeError):
        async with budget.reserved(60):
            assert budget.in_flight == 60
            raise RuntimeError("store failed")
    assert budget.in_flight == 0

    entered = asyncio.Event()

    async def fetch_forever() -> None:
        async with budget.reserved(70):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(fetch_forever())
    await entered.wait()
    assert budget.in_flight == 70
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.in_flight == 0


async def test_bytes_per_block_is_a_moving_mean_plus_deviations_of_measured_answers() -> None:
    budget = ByteBudget(1 << 30)
    assert budget.bytes_per_block("main") == INITIAL_BYTES_PER_BLOCK
    budget.observe("main", 10_000, 10)  # 1,000 per block; deviation starts at half of it
    assert budget.bytes_per_block("main") == 1_000 + 2 * 500
    budget.observe("main", 20_000, 10)  # 2,000 per block
    deviation = 0.75 * 500 + 0.25 * 1_000
    mean = 0.75 * 1_000 + 0.25 * 2_000
    assert budget.bytes_per_block("main") == pytest.approx(mean + 2 * deviation)
    assert budget.estimate("main", 4) == int(4 * budget.bytes_per_block("main"))
    for _ in range(50):  # steady answers: the margin fades, the estimate meets the answers
        budget.observe("main", 30_000, 10)
    assert budget.bytes_per_block("main") == pytest.approx(3_000, rel=1e-3)
    assert budget.bytes_per_block("other") == INITIAL_BYTES_PER_BLOCK  # per chain


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ByteBudget(0)


async def test_one_caller_measures_a_new_chain_while_the_others_wait_for_it() -> None:
    budget = ByteBudget(1 << 20)
    assert await budget.claim_probe("main") is True  # the first caller measures
    waiting = [asyncio.create_task(budget.claim_probe("main")) for _ in range(3)]
    await settle()
    assert not any(task.done() for task in waiting)
    budget.probe_failed("main")  # its batch failed: one waiter measures instead
    await settle()
    assert sorted(task.result() for task in waiting if task.done()) == [True]
    budget.observe("main", 4_000, 4)  # measured: the rest go on with the estimate
    await settle()
    assert all(task.done() for task in waiting)
    assert [task.result() for task in waiting].count(True) == 1
    assert await budget.claim_probe("main") is False


async def test_answers_past_their_reservation_take_room_and_only_one_read_passes_the_budget() -> (
    None
):
    """Reads of answers larger than their batch reserved (a padding provider): each chunk past
    the reservation takes room; with none left, one read at a time (the overdraft) goes on,
    up to its answer's end; the others wait, holding what they have, and go on once it is
    decoded. Nothing waits for ever, and nothing passes the budget but that one read."""
    budget = ByteBudget(100)
    reservation = await budget.reserve(30)
    answers = budget.answers(reservation)
    first, second, third = answers.read(), answers.read(), answers.read()
    await first.take(20)  # within the reservation: nothing more held
    assert budget.in_flight == 30
    await second.take(50)  # 10 reserved, 40 from the budget
    assert (budget.in_flight, second.extra) == (70, 40)
    await first.take(40)  # past the budget: the overdraft
    assert (budget.in_flight, first.extra) == (110, 40)
    waiting = asyncio.create_task(second.take(10))
    blocked = asyncio.create_task(third.take(1))
    await settle()
    assert not waiting.done() and not blocked.done()  # the overdraft is taken, no room
    await first.take(30)  # the overdraft read goes on: its cap bounds it, not the budget
    assert budget.in_flight == 140
    first.give_back()  # decoded: its 70 extra bytes go back, the overdraft is free
    await settle()
    assert waiting.done() and blocked.done()
    assert budget.in_flight == 30 + 50 + 1  # second's 40 + 10, third's 1 past the reservation
    second.give_back()
    third.give_back()
    reservation.release()
    assert budget.in_flight == 0 and budget.high_water == 140


async def test_a_read_cancelled_while_it_waits_for_room_gives_back_what_it_took() -> None:
    budget = ByteBudget(100)
    reservation = await budget.reserve(100)
    answers = budget.answers(reservation)
    holder, other = answers.read(), answers.read()
    await holder.take(150)  # the overdraft
    waiting = asyncio.create_task(other.take(10))
    await settle()
    waiting.cancel()
    await settle()
    other.give_back()
    holder.give_back()
    reservation.release()
    assert budget.in_flight == 0


async def test_try_reserve_holds_bytes_only_if_they_fit_now_and_no_one_waits() -> None:
    budget = ByteBudget(100)
    held = budget.try_reserve(60)
    assert held is not None and budget.in_flight == 60
    assert budget.try_reserve(50) is None and budget.in_flight == 60  # does not fit: nothing held
    waiting = asyncio.create_task(budget.reserve(50))
    await settle()
    assert budget.try_reserve(10) is None  # it would fit, but a waiter is first
    freed = asyncio.create_task(budget.freed())
    await settle()
    assert not freed.done()
    held.release()
    await settle()
    assert freed.done() and waiting.done() and budget.in_flight == 50
    small = budget.try_reserve(50)
    assert small is not None and budget.in_flight == 100
    small.release()
    waiting.result().release()
    assert budget.in_flight == 0
