"""The data converter of every client and worker: the SDK's JSON, with gap lists decoded fast.

The SDK decodes each dataclass of a list by evaluating its type hints again: a Scheduler input or
a scan result with 10,000 gaps took 1.8 s to decode on two busy cores, and inside the workflow
sandbox more than the 2 s its deadlock detector allows an activation, so the workflow task
failed again and again. Ranges are built directly instead; the wire format is the SDK's own, so
recorded histories and other clients decode the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
)

from indexer.workflows.inputs import Range


class RangeConverter(JSONTypeConverter):
    """`{"start": s, "end": e}` to Range(s, e), without the SDK's per-value type-hint lookup."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if hint is Range and isinstance(value, dict):
            return Range(value["start"], value["end"])
        return JSONTypeConverter.Unhandled


class IndexerPayloadConverter(CompositePayloadConverter):
    """The SDK's default payload converters, its JSON one taught RangeConverter."""

    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(custom_type_converters=[RangeConverter()])
                if isinstance(converter, JSONPlainPayloadConverter)
                else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=IndexerPayloadConverter
)
