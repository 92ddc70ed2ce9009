"""The clients' data converter: the SDK's wire format, with lists of ranges decoded directly."""

from __future__ import annotations

import pytest
from temporalio.converter import DataConverter

from indexer.workflows.inputs import HistoryBounds, Range, SchedulerInput
from indexer.workflows.payloads import DATA_CONVERTER


async def test_a_scheduler_input_with_10000_gaps_round_trips_in_the_sdks_own_format() -> None:
    request = SchedulerInput(
        "mainnet", [Range(n, n) for n in range(0, 20_000, 2)], 3, HistoryBounds(100, 5_000), 4.0
    )
    ours = await DATA_CONVERTER.encode([request])
    assert ours == await DataConverter.default.encode([request])  # histories stay readable
    assert await DATA_CONVERTER.decode(ours, [SchedulerInput]) == [request]
    assert await DataConverter.default.decode(ours, [SchedulerInput]) == [request]


async def test_a_range_missing_a_field_is_refused_not_guessed() -> None:
    payloads = await DATA_CONVERTER.encode([{"chain": "c", "gaps": [{"start": 1}]}])
    with pytest.raises(TypeError, match="field gaps") as raised:
        await DATA_CONVERTER.decode(payloads, [SchedulerInput])
    assert repr(raised.value.__cause__.__cause__) == "KeyError('end')"
