"""Slots of the ranges worker, which follow the memory budget (indexer/worker_slots.py)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest
from temporalio.worker import SlotPermit, SlotReleaseContext

from indexer.worker_budget import ByteBudget
from indexer.worker_slots import RangeSlots

CTX = SimpleNamespace(slot_type="activity", task_queue="q-ranges", worker_identity="w")


def used(slots: RangeSlots, permit: SlotPermit) -> None:
    """The permit's poll brought a range."""
    slots.mark_slot_used(
        SimpleNamespace(permit=permit, slot_info=SimpleNamespace(activity_type="index_range"))
    )


def released(slots: RangeSlots, permit: SlotPermit) -> None:
    slots.release_slot(SlotReleaseContext(slot_info=None, permit=permit))


async def pending(awaitable: asyncio.Future[SlotPermit] | asyncio.Task[SlotPermit]) -> bool:
    await asyncio.sleep(0.01)
    return not awaitable.done()


async def running(slots: RangeSlots) -> SlotPermit:
    """A permit whose poll brought a range."""
    permit = await asyncio.wait_for(slots.reserve_slot(CTX), 1)
    used(slots, permit)
    return permit


async def test_an_open_budget_grants_every_slot_and_no_more() -> None:
    slots = RangeSlots(ByteBudget(1000), slots=4)
    permits = [await running(slots) for _ in range(4)]
    assert slots.try_reserve_slot(CTX) is None
    fifth = asyncio.create_task(slots.reserve_slot(CTX))
    assert await pending(fifth)
    released(slots, permits[0])
    assert isinstance(await asyncio.wait_for(fifth, 1), SlotPermit)


async def test_one_poll_at_a_time_waits_for_a_range() -> None:
    """Each poll in flight could bring a range after the budget closed: only one goes out."""
    slots = RangeSlots(ByteBudget(1000), slots=4)
    polling = await slots.reserve_slot(CTX)
    second = asyncio.create_task(slots.reserve_slot(CTX))
    assert await pending(second)
    used(slots, polling)  # its range arrived: the next poll may go
    assert isinstance(await asyncio.wait_for(second, 1), SlotPermit)
    released(slots, await second)  # a poll that timed out without a task
    assert (slots.held, slots.running) == (1, 1)


async def test_a_closed_budget_grants_no_permit_at_all() -> None:
    budget = ByteBudget(1000)
    slots = RangeSlots(budget, slots=32)
    ranges = [await running(slots) for _ in range(3)]
    holder = await budget.reserve(budget.budget_bytes)
    assert not budget.is_open
    assert slots.try_reserve_slot(CTX) is None
    blocked = asyncio.create_task(slots.reserve_slot(CTX))
    assert await pending(blocked)
    released(slots, ranges[0])  # a free slot, but no room for its bytes: still nothing
    assert await pending(blocked)
    holder.release()
    assert isinstance(await asyncio.wait_for(blocked, 1), SlotPermit)


async def test_room_in_the_budget_reopens_the_slots() -> None:
    budget = ByteBudget(1000)
    slots = RangeSlots(budget, slots=32)
    holder = await budget.reserve(budget.budget_bytes)
    waiter = asyncio.create_task(budget.reserve(1))
    await asyncio.sleep(0)
    blocked = asyncio.create_task(slots.reserve_slot(CTX))
    assert await pending(blocked)
    holder.release()  # the waiter gets its byte; nobody waits: open
    (await waiter).release()
    assert budget.is_open
    assert isinstance(await asyncio.wait_for(blocked, 1), SlotPermit)


async def test_a_release_from_the_sdk_thread_wakes_a_waiting_reservation() -> None:
    slots = RangeSlots(ByteBudget(1000), slots=3)
    permits = [await running(slots) for _ in range(3)]
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


def test_no_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="activity slot"):
        RangeSlots(ByteBudget(1000), slots=0)
