"""Activity slots that follow the memory budget: a worker takes no new range it cannot feed.

A range taken by a worker starts its start-to-close timeout at once. Were the worker to take
every range its slots allow (32) while its memory budget feeds only a few at a time, most of them
would wait in the worker for bytes, their timeouts running, while another worker with room could
not have them. So the worker asks Temporal for an activity task only while its budget is open
(ByteBudget.is_open: at most one batch waits for room); while it is closed, only SPARE_SLOTS
slots are offered to what is not a range (scans, scheduling: short and light) and to the polls
that fetch them, so a chain's head is still followed while the worker is busy.

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
from indexer.workflows.activity_names import INDEX_RANGE

# Slots offered while the budget is closed: held by polls and by activities that are not ranges
# (a poll may still bring a range: at most this many more ranges than the budget feeds).
SPARE_SLOTS = 2


class _Permit(SlotPermit):
    def __init__(self) -> None:
        self.runs_range = False


class BudgetedActivitySlots(CustomSlotSupplier):
    """At most `slots` activities; a new poll only while the budget is open or, closed, while
    fewer than SPARE_SLOTS permits are not running a range."""

    def __init__(self, budget: ByteBudget, slots: int) -> None:
        if slots <= SPARE_SLOTS:
            raise ValueError(f"a worker needs more than {SPARE_SLOTS} activity slots")
        self.budget = budget
        self.slots = slots
        self.held = 0  # permits handed out and not released
        self.ranges = 0  # of them, running index_range
        self._lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        budget.on_change(self._changed)

    def _may_grant(self) -> bool:
        if self.held >= self.slots:
            return False
        return self.budget.is_open or self.held - self.ranges < SPARE_SLOTS

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
        activity_type = getattr(ctx.slot_info, "activity_type", None)
        if isinstance(permit, _Permit) and activity_type == INDEX_RANGE:
            with self._lock:
                permit.runs_range = True
                self.ranges += 1

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        permit = ctx.permit
        with self._lock:
            self.held -= 1
            if isinstance(permit, _Permit) and permit.runs_range:
                permit.runs_range = False
                self.ranges -= 1
        self._changed()
