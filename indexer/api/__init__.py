"""The admin HTTP API: chains, their configuration and status, gaps, backfills, health."""
