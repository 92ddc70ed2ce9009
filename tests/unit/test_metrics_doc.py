"""The metric declarations behind docs/metrics.md: a sentence each, bounded labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics


def test_every_family_has_a_sentence_and_a_bounded_prefix() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    families = list(registry.collect())
    assert len(families) >= 50
    for family in families:
        assert family.name.startswith("tindexer_"), family.name
        assert family.documentation.endswith("."), family.name
        assert family.documentation[0].isupper(), family.name


def test_no_label_can_carry_a_block_hash_or_workflow_id() -> None:
    metrics = Metrics(CollectorRegistry())
    forbidden = {"block", "number", "hash", "workflow_id", "run_id", "range"}
    assert len(metrics.declared) >= 50
    for entry in metrics.declared:
        assert not set(entry.labels) & forbidden, entry.labels
