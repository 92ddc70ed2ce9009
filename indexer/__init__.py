"""Temporal Indexer: EVM blocks into PostgreSQL, orchestrated by Temporal."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("temporal-indexer")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
