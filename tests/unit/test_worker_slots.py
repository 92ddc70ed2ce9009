"""Activity slots that follow the memory budget (indexer/worker_slots.py)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest
from temporalio.worker import SlotPermit, SlotReleaseContext

from indexer.worker_budget import ByteBudget
from indexer.worker_slots import SPARE_SLOTS, BudgetedActivitySlots

CTX = SimpleNamespace(slot_type="activity", task_queue="q", worker_identity="w")


def used(slots: BudgetedActivitySlots, permit: SlotPermit, activity_type: str) -> None:
    slots.mark_slot_used(
        SimpleNamespace(permit=permit, slot_info=SimpleNamespace(activity_type=activity_type))
    )


def released(slots: BudgetedActivitySlots, permit: SlotPermit) -> None:
    slots.release_slot(SlotReleaseContext(slot_info=None, permit=permit))


async def pending(awaitable: asyncio.Future[SlotPermit] | asyncio.Task[SlotPermit]) -> bool:
    await asyncio.sleep(0.01)
    return not awaitable.done()


async def close(budget: ByteBudget) -> asyncio.Task[object]:
    """Fill the budget and queue one more batch behind it: the budget is closed."""
    await budget.reserve(budget.budget_bytes)
    waiter = asyncio.create_task(budget.reserve(1))
    await asyncio.sleep(0)
    assert not budget.is_open
    return waiter


async def test_an_open_budget_grants_every_slot_and_no_more() -> None:
    slots = BudgetedActivitySlots(ByteBudget(1000), slots=4)
    permits = [await slots.reserve_slot(CTX) for _ in range(4)]
    assert slots.try_reserve_slot(CTX) is None
    fifth = asyncio.create_task(slots.reserve_slot(CTX))
    assert await pending(fifth)
    released(slots, permits[0])
    assert isinstance(await asyncio.wait_for(fifth, 1), SlotPermit)


async def test_a_closed_budget_takes_no_new_range_but_keeps_spare_slots_for_scans() -> None:
    budget = ByteBudget(1000)
    slots = BudgetedActivitySlots(budget, slots=32)
    ranges = [await slots.reserve_slot(CTX) for _ in range(3)]
    for permit in ranges:
        used(slots, permit, "index_range")
    waiter = await close(budget)
    # Closed: SPARE_SLOTS permits for polls and scans, and not one more.
    spare = [await asyncio.wait_for(slots.reserve_slot(CTX), 1) for _ in range(SPARE_SLOTS)]
    blocked = asyncio.create_task(slots.reserve_slot(CTX))
    assert await pending(blocked)
    used(slots, spare[0], "scan_head")  # a scan still runs on a spare slot
    released(slots, spare[0])
    assert isinstance(await asyncio.wait_for(blocked, 1), SlotPermit)
    # A spare permit that brought a range counts as a range: the spare slot is taken back.
    used(slots, spare[1], "index_range")
    assert slots.ranges == 4
    assert slots.try_reserve_slot(CTX) is not None
    assert slots.try_reserve_slot(CTX) is None
    waiter.cancel()


async def test_room_in_the_budget_reopens_the_slots() -> None:
    budget = ByteBudget(1000)
    slots = BudgetedActivitySlots(budget, slots=32)
    holder = await budget.reserve(budget.budget_bytes)
    waiter = asyncio.create_task(budget.reserve(1))
    await asyncio.sleep(0)
    for _ in range(SPARE_SLOTS):
        await slots.reserve_slot(CTX)
    blocked = asyncio.create_task(slots.reserve_slot(CTX))
    assert await pending(blocked)
    holder.release()  # the waiter gets its byte; nobody waits: open
    (await waiter).release()
    assert budget.is_open
    assert isinstance(await asyncio.wait_for(blocked, 1), SlotPermit)


async def test_a_release_from_the_sdk_thread_wakes_a_waiting_reservation() -> None:
    slots = BudgetedActivitySlots(ByteBudget(1000), slots=3)
    permits = [await slots.reserve_slot(CTX) for _ in range(3)]
    blocked = asyncio.create_task(slots.reserve_slot(CTX))
    assert await pending(blocked)
    thread = threading.Thread(target=released, args=(slots, permits[1]))
    thread.start()
    thread.join()
    assert isinstance(await asyncio.wait_for(blocked, 1), SlotPermit)
    assert slots.held == 3


async def test_one_batch_may_wait_for_room_before_the_worker_stops_taking_ranges() -> None:
    """A range ready to go the moment a batch is stored (not a poll and a start away); a
    second waiting batch closes the budget."""
    budget = ByteBudget(1000)
    await budget.reserve(600)
    first = asyncio.create_task(budget.reserve(600))
    await asyncio.sleep(0)
    assert budget.is_open
    second = asyncio.create_task(budget.reserve(600))
    await asyncio.sleep(0)
    assert not budget.is_open
    first.cancel()
    second.cancel()


async def test_a_probe_in_progress_closes_the_budget() -> None:
    """While a chain's first batch is measured, its other ranges wait: take no more."""
    budget = ByteBudget(1000)
    assert await budget.claim_probe("c")
    assert not budget.is_open
    budget.observe("c", 400, 4)
    assert budget.is_open


def test_too_few_slots_for_the_spares_is_refused() -> None:
    with pytest.raises(ValueError, match="activity slots"):
        BudgetedActivitySlots(ByteBudget(1000), slots=SPARE_SLOTS)
