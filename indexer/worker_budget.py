"""The worker's memory budget: a byte-weighted limiter shared by every range the worker runs.

A batch of blocks reserves the bytes its answers are expected to take before its first request
is sent (the chain's moving average of answer bytes per block), corrects the reservation to the
bytes actually read when its answers are in, and releases it once its rows are committed. So the
number of ranges and batches a worker has in flight follows the bytes they hold, not a count:
the same budget admits many 3-transaction batches or a few 300-transaction ones. A batch larger
than the whole budget still runs, alone (it waits until nothing else is reserved), so nothing
deadlocks on an outsized block.

A batch's estimate is not what bounds memory, though: any answer may be up to
rpc_max_response_bytes, whatever was expected. So answers are read under the budget
(`answers`, chain/answer_room.py): each chunk read is counted against what its batch reserved,
and past that it takes room from the budget, held until the answer is decoded. Past the
budget itself, one read at a time (the overdraft) may go on, up to its cap, so reads that each
hold part of an answer never wait for each other for ever: whatever providers send, the answer
bytes a worker holds stay within its budget plus one response cap.

The bytes counted are JSON-RPC answer bytes; what a batch costs in memory (the answer, the
decoded blocks, its COPY lines) is a small multiple of them, which is why the default budget
is a fraction of the worker's memory limit (config.DEFAULT_WORKER_MEMORY_BUDGET_BYTES).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from exporter.metrics import Metrics

# Before a chain's first answer: assume heavy blocks (a mainnet block with its receipts and
# logs is ~0.5 MB of JSON), so a cold worker starts few batches and widens once it has measured.
INITIAL_BYTES_PER_BLOCK = 256 * 1024
SMOOTHING = 0.25  # weight of the newest batch in the moving averages of bytes per block
DEVIATIONS = 2  # mean deviations of bytes per block reserved above the mean
# Batches that may wait for room while the worker still takes new ranges: without one, a range
# ended and the next began a poll and a start later (750k 3-tx blocks: 127.9 s, with it 106.5 s).
READY_WAITERS = 1


class Reservation:
    """Bytes one batch holds in a ByteBudget, from before its request until it is stored."""

    def __init__(self, budget: ByteBudget, size: int) -> None:
        self._budget = budget
        self.size = size
        self.released = False

    def correct(self, measured: int) -> None:
        """Hold `measured` bytes instead of the estimate (never waits: the answer is here)."""
        if not self.released:
            measured = max(measured, 1)
            self._budget._resize(self.size, measured)
            self.size = measured

    def release(self) -> None:
        """Give the bytes back; idempotent, so every exit path may call it."""
        if not self.released:
            self.released = True
            self._budget._resize(self.size, 0)


class BatchAnswers:
    """The answers of one batch read under its reservation (an AnswerRoom, chain/answer_room.py):
    its first reservation.size bytes are already held; every byte past them is taken from the
    budget until the answer it belongs to is decoded."""

    def __init__(self, budget: ByteBudget, reservation: Reservation) -> None:
        self.budget = budget
        self.left = reservation.size  # reserved bytes no read of the batch has used yet

    def read(self) -> AnswerRead:
        return AnswerRead(self)


class AnswerRead:
    """One answer's read: the bytes it took past its batch's reservation."""

    def __init__(self, batch: BatchAnswers) -> None:
        self.batch = batch
        self.extra = 0

    async def take(self, size: int) -> None:
        reserved = min(size, self.batch.left)
        self.batch.left -= reserved
        if size > reserved:
            await self.batch.budget._overdraw(self, size - reserved)
            self.extra += size - reserved

    def give_back(self) -> None:
        extra, self.extra = self.extra, 0
        self.batch.budget._end_read(self, extra)


class ByteBudget:
    """Bounds the answer bytes a worker holds; learns each chain's bytes per block.

    Waiters are served first come, first served: a large batch at the head of the queue is not
    starved by small ones slipping past it.
    """

    def __init__(self, budget_bytes: int, metrics: Metrics | None = None) -> None:
        if budget_bytes <= 0:
            raise ValueError("the memory budget must be positive")
        self.budget_bytes = budget_bytes
        self.in_flight = 0
        self.high_water = 0  # the most bytes ever reserved at once, for tests and benchmarks
        self.largest_reservation = 0
        self.waited_seconds = 0.0
        self.metrics = metrics
        self._per_block: dict[str, float] = {}  # moving mean of answer bytes per block
        self._deviation: dict[str, float] = {}  # moving mean deviation from it
        self._probes: dict[str, asyncio.Event] = {}  # chains whose first batch is being measured
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._listeners: list[Callable[[], None]] = []  # called whenever is_open may have changed
        self._overdraft: AnswerRead | None = None  # the one read that may pass the budget
        self._room = asyncio.Event()  # set (and replaced) whenever bytes or the overdraft free
        if metrics is not None:
            metrics.worker_memory_budget.set(budget_bytes)
            metrics.worker_bytes_in_flight.set(0)

    @property
    def is_open(self) -> bool:
        """Whether a new range would get bytes soon: at most READY_WAITERS batches wait for
        room (one range ready to go the moment a batch is stored, not a poll away), no chain's
        first batch is still being measured, and something is left. The worker stops taking
        new ranges while it is closed (indexer/worker_slots.py), so ranges wait in Temporal's
        queue, where any worker with room may take them, not in this worker, where their
        timeouts run."""
        return (
            len(self._waiters) <= READY_WAITERS
            and not self._probes
            and self.in_flight < self.budget_bytes
        )

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (no arguments, must not block) whenever is_open may have changed."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def _fits(self, size: int) -> bool:
        return self.in_flight == 0 or self.in_flight + size <= self.budget_bytes

    async def reserve(self, size: int) -> Reservation:
        """Wait until `size` bytes fit (or nothing else is held), then hold them."""
        size = max(size, 1)
        if not self._waiters and self._fits(size):
            self._resize(0, size)
            return Reservation(self, size)
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((size, granted))
        self._changed()
        started = time.perf_counter()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._resize(size, 0)  # granted just as it was cancelled: hand it back
            else:
                self._waiters.remove((size, granted))
                self._grant()  # it may have held up the queue
                self._changed()
            raise
        finally:
            waited = time.perf_counter() - started
            self.waited_seconds += waited
            if self.metrics is not None:
                self.metrics.worker_budget_wait.inc(waited)
        return Reservation(self, size)

    def try_reserve(self, size: int) -> Reservation | None:
        """Hold `size` bytes if they fit now and no one waits for room; else None, holding
        nothing. For what is worth doing only with room to spare (a range's batches past its
        first): it never waits, and never goes ahead of a waiter."""
        size = max(size, 1)
        if self._waiters or self.in_flight + size > self.budget_bytes:
            return None
        self._resize(0, size)
        return Reservation(self, size)

    async def freed(self) -> None:
        """Return once bytes are next given back (or the overdraft ends): room may be there."""
        room = self._room
        await room.wait()

    @contextlib.asynccontextmanager
    async def reserved(self, size: int) -> AsyncIterator[Reservation]:
        """A reservation released however the block exits (error, cancellation)."""
        reservation = await self.reserve(size)
        try:
            yield reservation
        finally:
            reservation.release()

    def answers(self, reservation: Reservation) -> BatchAnswers:
        """Room for the answers of the batch holding `reservation` while they are read."""
        return BatchAnswers(self, reservation)

    async def _overdraw(self, read: AnswerRead, size: int) -> None:
        """Hold `size` more bytes of an answer being read: at once while the budget has them;
        past it only as the overdraft, which one read holds until its answer is decoded (the
        transport's cap bounds that read). Reads of admitted batches go before waiting batches:
        their bytes are freed only once they end."""
        while not (read is self._overdraft or self.in_flight + size <= self.budget_bytes):
            if self._overdraft is None:
                self._overdraft = read
                break
            room = self._room
            await room.wait()
        self._resize(0, size)

    def _end_read(self, read: AnswerRead, extra: int) -> None:
        if self._overdraft is read:
            self._overdraft = None
            self._free_room()
        if extra:
            self._resize(extra, 0)

    def _free_room(self) -> None:
        self._room.set()
        self._room = asyncio.Event()

    def _resize(self, old: int, new: int) -> None:
        self.in_flight += new - old
        self.high_water = max(self.high_water, self.in_flight)
        self.largest_reservation = max(self.largest_reservation, new)
        if self.metrics is not None:
            self.metrics.worker_bytes_in_flight.set(self.in_flight)
        if new < old:
            self._free_room()
            self._grant()
        self._changed()

    def _grant(self) -> None:
        """Hand bytes to the waiters at the head of the queue, in order, while they fit."""
        while self._waiters and self._fits(self._waiters[0][0]):
            size, granted = self._waiters.popleft()
            if not granted.done():
                granted.set_result(None)
                self._resize(0, size)

    async def claim_probe(self, chain: str) -> bool:
        """Whether the caller must measure the chain's first batch (True: make it small, and
        call observe or probe_failed); False once the chain has a measurement. Until then every
        other caller waits here: a cold worker's ranges would otherwise all start batches sized
        by a guess, and one guess too low passes the budget many times over."""
        while chain not in self._per_block:
            probe = self._probes.get(chain)
            if probe is None:
                self._probes[chain] = asyncio.Event()
                self._changed()
                return True
            await probe.wait()
        return False

    def probe_failed(self, chain: str) -> None:
        """The first batch failed before it was measured: let another caller measure."""
        probe = self._probes.pop(chain, None)
        if probe is not None:
            probe.set()
            self._changed()

    def bytes_per_block(self, chain: str) -> float:
        """What to reserve per block of the chain: its moving average of answer bytes per
        block plus DEVIATIONS moving mean deviations (as TCP estimates a retransmit timeout),
        so an answer rarely passes its reservation; a heavy guess before any answer."""
        if chain not in self._per_block:
            return INITIAL_BYTES_PER_BLOCK
        return self._per_block[chain] + DEVIATIONS * self._deviation[chain]

    def estimate(self, chain: str, blocks: int) -> int:
        return max(int(self.bytes_per_block(chain) * blocks), 1)

    def observe(self, chain: str, measured: int, blocks: int) -> None:
        """Fold a batch's answer bytes into the chain's bytes per block and their deviation."""
        if blocks <= 0:
            return
        sample = measured / blocks
        mean = self._per_block.get(chain)
        if mean is None:
            self._per_block[chain], self._deviation[chain] = sample, sample / 2
            self.probe_failed(chain)  # measured: wake the waiters
            return
        deviation = self._deviation[chain]
        self._deviation[chain] = (1 - SMOOTHING) * deviation + SMOOTHING * abs(sample - mean)
        self._per_block[chain] = (1 - SMOOTHING) * mean + SMOOTHING * sample
