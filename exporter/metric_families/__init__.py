"""Metric declarations by area; `exporter.metrics.Metrics` assembles them."""
