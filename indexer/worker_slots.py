"""Activity slots of the ranges worker: it asks Temporal for a range only while its memory
budget can feed one.

A range taken by a worker starts its start-to-close timeout at once. Were the worker to take
every range its slots allow (32) while its memory budget feeds only a few at a time, most of them
would wait in the worker for bytes, their timeouts running, while another worker with room could
not have them. Temporal cannot hand out tasks of one queue by activity type, so index_range has a
task queue of its own (workflows/task_queues.py), polled by a worker of its own in the same
process (worker.py), whose slots are these: a permit is granted only while the budget is open
(ByteBudget.is_open: at most one batch waits for room), and only one permit at a time waits for
its task. So a closed budget takes no range through any permit: a poll sent while the budget was
open is the only range that can still arrive after it closed. Scans and scheduling run on the
main worker with slots of their own, so they never wait behind ranges.

The SDK calls reserve_slot in the worker's event loop but mark_slot_used and release_slot from
its own threads: the counts are locked, and waiters are woken through the loop.
"""

from __future__ import annotations

import asyncio
import threading

from temporalio.worker import (
    CustomSlotSupplier,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
)

from indexer.worker_budget import ByteBudget

# Permits that may wait for a task (a poll in flight) at once: each can bring a range after the
# budget closed, so one. A poll answered from a backlog takes milliseconds, a range seconds.
POLLS_IN_FLIGHT = 1


class _Permit(SlotPermit):
    def __init__(self) -> None:
        self.used = False


class RangeSlots(CustomSlotSupplier):
    """At most `slots` ranges; a new permit only while the budget is open and no other permit
    waits for its task."""

    def __init__(self, budget: ByteBudget, slots: int) -> None:
        if slots < 1:
            raise ValueError("a worker needs at least one activity slot")
        self.budget = budget
        self.slots = slots
        self.held = 0  # permits handed out and not released
        self.running = 0  # of them, running a range
        self._lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        budget.on_change(self._changed)

    def _may_grant(self) -> bool:
        polling = self.held - self.running
        return self.held < self.slots and polling < POLLS_IN_FLIGHT and self.budget.is_open

    def _changed(self) -> None:
        """Wake the waiting reservations (from any thread); they check again."""
        if self._wake is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def _take(self) -> SlotPermit | None:
        with self._lock:
            if not self._may_grant():
                return None
            self.held += 1
        return _Permit()

    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        if self._wake is None:
            self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        while True:
            self._wake.clear()  # before the check: a change after it wakes the wait
            if (permit := self._take()) is not None:
                return permit
            await self._wake.wait()

    def try_reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit | None:
        return self._take()

    def mark_slot_used(self, ctx: SlotMarkUsedContext) -> None:
        permit = ctx.permit
        if isinstance(permit, _Permit) and not permit.used:
            with self._lock:
                permit.used = True
                self.running += 1
        self._changed()  # its poll is answered: another may go out

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        permit = ctx.permit
        with self._lock:
            self.held -= 1
            if isinstance(permit, _Permit) and permit.used:
                permit.used = False
                self.running -= 1
        self._changed()
