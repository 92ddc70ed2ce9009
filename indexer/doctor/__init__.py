"""`tindexer doctor` and `GET /doctor`: which component is the bottleneck now, from live metrics.

It reads the indexer's /metrics endpoints and, when `temporal_metrics_url` is set and answers,
the Temporal server's; scrapes them twice a window apart; and turns the counters' increases
and the gauges into verdicts, each naming its component, evidence and metric. What it cannot
see it says so, rather than guessing.
"""
