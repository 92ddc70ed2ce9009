"""bench/results/REPORT.md from the committed results: one section per benchmark, as measured."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _provenance(result: dict[str, Any]) -> str:
    machine = result.get("machine", {})
    if isinstance(machine, dict):
        machine = f"{machine.get('cpus', '?')} CPUs, load {machine.get('load_average_at_start')}"
    return (
        f"_{result.get('date', '?')} · commit {result.get('commit', '?')} · {machine} · "
        f"`{result.get('command', '?')}`_"
    )


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> list[str]:
    """A Markdown table; `align` has an `l` or `r` per column (default: the first left, the
    others right, as figures are)."""
    align = align or "l" + "r" * (len(columns) - 1)
    rules = ["---" if side == "l" else "---:" for side in align]
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(rules) + "|",
        *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows),
    ]


def ceilings_table(median: dict[str, Any], fetch: str) -> list[str]:
    """The ceilings by process count: blocks/s and how busy the machine was, fetch and COPY."""
    return table(
        ["processes", f"{fetch} blocks/s", "busy", "COPY blocks/s", "busy"],
        (
            [
                n,
                f"{median['rpc'][n]['blocks_per_second']:,}",
                f"{median['rpc'][n]['machine_busy']:.0%}",
                f"{median['copy'][n]['blocks_per_second']:,}",
                f"{median['copy'][n]['machine_busy']:.0%}",
            ]
            for n in median["rpc"]
        ),
        align="rrrrr",
    )


def schedule_section(result: dict[str, Any]) -> list[str]:
    per_block, ranges = result["per_block"], result["ranges"]
    lines = [
        "## Scheduling: one workflow per block vs block ranges",
        "",
        _provenance(result),
        "",
        *table(
            ["design", "blocks", "blocks/workflow", "seconds (median)", "blocks/s", "workflows/s"],
            (
                [
                    name,
                    f"{run['blocks']:,}",
                    run["blocks_per_workflow"],
                    f"{run['seconds']} ({', '.join(map(str, run['runs_seconds']))})",
                    f"{run['blocks_per_second']:,}",
                    run["workflows_per_second"],
                ]
                for name, run in (("per block", per_block), ("ranges", ranges))
            ),
        ),
    ]
    lines += ["", f"Ranges schedule **{result['ratio']}×** more blocks per second.", ""]
    if result.get("sweep"):
        lines += [
            f"Sweep (one knob at a time around the defaults {result['defaults']}, one run each):",
            "",
            *table(
                ["blocks/workflow", "batch", "parallelism", "seconds", "blocks/s", "workflows/s"],
                (
                    [
                        run["blocks_per_workflow"],
                        run["scheduler_batch_size"],
                        run["parallelism"],
                        run["seconds"],
                        f"{run['blocks_per_second']:,}",
                        run["workflows_per_second"],
                    ]
                    for run in result["sweep"]
                ),
                align="rrrrrr",
            ),
            "",
        ]
    return lines


def backlog_section(
    result: dict[str, Any],
    title: str = "End to end: the backlog through Temporal into PostgreSQL",
) -> list[str]:
    small = result["small"]
    lower = min(result["rpc_ceiling_blocks_per_second"], result["copy_ceiling_blocks_per_second"])
    datasets = ", ".join(result.get("datasets", ["every dataset of the chain"]))
    lines = [
        f"## {title}",
        "",
        _provenance(result),
        "",
        f"Datasets indexed end to end: {datasets}.",
        "",
    ]
    keys = (
        "blocks",
        "txs_per_block",
        "schedule_seconds",
        "index_seconds",
        "blocks_per_second",
        "failed_starts",
        "rate_limited",
        "activity_timeout_rate",
        "lost_blocks",
        "duplicate_blocks",
    )
    rows: list[list[object]] = [[key, f"{result[key]:,}", f"{small[key]:,}"] for key in keys]
    rows += [
        [
            f"peak RSS {process} (MiB)",
            f"{rss / 2**20:,.0f}",
            f"{small['peak_rss_bytes'].get(process, 0) / 2**20:,.0f}",
        ]
        for process, rss in result["peak_rss_bytes"].items()
    ]
    rows += [
        [f"CPU seconds {process}", f"{seconds:,}", f"{small['cpu_seconds'].get(process, 0):,}"]
        for process, seconds in result.get("cpu_seconds", {}).items()
    ]
    lines += table(["measure", "big run", "small run"], rows)
    lines += [
        "",
        f"Worker processes: {result.get('workers', 1)}. Ceilings in the same run: RPC (fetch "
        f"only) {result['rpc_ceiling_blocks_per_second']:,} blocks/s, COPY (store only) "
        f"{result['copy_ceiling_blocks_per_second']:,} blocks/s. The indexer reached "
        f"**{result['fraction_of_lower_ceiling']:.0%}** of the lower ({lower:,}). Worker peak "
        f"RSS, big over small: {result['worker_peak_rss_ratio_big_over_small']}×.",
        "",
    ]
    if by_processes := result.get("ceilings_by_processes"):
        median = by_processes["median"]
        lines += [
            f"Ceilings by process count ({by_processes['blocks']:,} blocks, medians of "
            f"{by_processes['runs']} runs; the higher count is the ceiling; busy = share of the "
            "machine's cores in use meanwhile):",
            "",
            *ceilings_table(median, "RPC"),
            "",
        ]
    if "fetch_and_store_bound_blocks_per_second" in result:
        lines += [
            "Fetching and storing share the same cores here, so a pipeline that does both, "
            "with no overhead of its own, reaches at most 1 / (1/RPC + 1/COPY) = "
            f"{result['fetch_and_store_bound_blocks_per_second']:,} blocks/s; the indexer "
            f"reached **{result['fraction_of_fetch_and_store_bound']:.0%}** of that.",
            "",
        ]
    lines += [
        f"![blocks/s and backlog over time]({result['plot']})",
        "",
    ]
    return lines


def mainnet_section(
    result: dict[str, Any], title: str = "Mainnet-shaped blocks end to end (every dataset)"
) -> list[str]:
    checks = result.get("checks", {})
    lines = [
        f"## {title}",
        "",
        _provenance(result),
        "",
        f"The simulated chain's `{result['profile']}` profile, datasets "
        f"{', '.join(result['datasets'])}; {result['workers']} worker processes, metrics and "
        f"tracing on; chain settings {result.get('chain_knobs') or 'defaults'}.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| blocks | {result['blocks']:,} |",
        f"| transactions | {result['transactions']:,} |",
        f"| logs | {result['logs']:,} |",
        f"| index seconds | {result['index_seconds']:,} |",
        f"| blocks/s | {result['blocks_per_second']:,} |",
        f"| transactions/s | {result['transactions_per_second']:,} |",
        f"| logs/s | {result['logs_per_second']:,} |",
        f"| RPC payload MB/s ({result['rpc_payload_bytes_per_block'] / 1e3:,.0f} kB a block) | "
        f"{result['rpc_payload_megabytes_per_second']:,} |",
        f"| fetch ceiling (blocks + receipts) blocks/s | "
        f"{result['fetch_ceiling_blocks_per_second']:,} |",
        f"| COPY ceiling (same rows) blocks/s | {result['copy_ceiling_blocks_per_second']:,} |",
        f"| bound 1/(1/fetch + 1/COPY) blocks/s | {result['bound_blocks_per_second']:,} |",
        f"| **fraction of the bound** | **{result['fraction_of_bound']:.0%}** |",
        f"| lost blocks / transactions / logs | {result['lost_blocks']} / "
        f"{result.get('lost_transactions', '?')} / {result.get('lost_logs', '?')} |",
        f"| duplicate blocks / transactions / logs | {result['duplicate_blocks']} / "
        f"{result.get('duplicate_transactions', '?')} / {result.get('duplicate_logs', '?')} |",
        f"| blocks with a wrong transaction / log count | "
        f"{checks.get('blocks_with_wrong_transaction_count', '?')} / "
        f"{checks.get('blocks_with_wrong_log_count', '?')} |",
        f"| activity timeout rate | {result['activity_timeout_rate']:.3%} "
        f"({result.get('activity_timeouts', 0):.0f} of {result.get('activity_attempts', 0):.0f}) |",
    ]
    for process, rss in result["peak_rss_bytes"].items():
        lines.append(f"| peak RSS {process} (MiB) | {rss / 2**20:,.0f} |")
    for process, seconds in result.get("cpu_seconds", {}).items():
        lines.append(f"| CPU seconds {process} | {seconds:,} |")
    for phase, seconds in result.get("phase_seconds", {}).items():
        count = result.get("phase_count", {}).get(phase, 0)
        lines.append(
            f"| IndexRange {phase} phase, seconds summed over {count:.0f} | {seconds:,.1f} |"
        )
    if "pg_query_p95_seconds" in result:  # runs since issue 23
        p95 = result["pg_query_p95_seconds"]
        p95_text = "none timed" if p95 is None else f"{p95 * 1e3:,.1f} ms"
        lines.append(f"| PostgreSQL query p95, every query of every worker | {p95_text} |")
    for query, p95 in result.get("pg_query_p95_seconds_by_query", {}).items():
        p95_text = "none timed" if p95 is None else f"{p95 * 1e3:,.1f} ms"
        lines.append(f"| PostgreSQL query p95, `{query}` | {p95_text} |")
    ceilings = result["ceilings"]
    median = ceilings["median"]
    lines += [
        "",
        f"Ceilings in the same run (medians of {ceilings['runs']}; fetch over "
        f"{ceilings['fetch_blocks']:,} blocks, COPY over {ceilings['copy_blocks']:,}, ranges "
        f"of {ceilings['blocks_per_range']} blocks, {ceilings['ranges_in_flight_per_process']} "
        "in flight per process; the higher process count is the ceiling):",
        "",
        *ceilings_table(median, "fetch"),
        "",
        f"![blocks/s and {result['plot_right_axis']} over time]({result['plot']})",
        "",
    ]
    return lines


def worker_rss_section(result: dict[str, Any]) -> list[str]:
    profiles = [key for key, value in result.items() if isinstance(value, dict) and "date" in value]
    lines = [
        "## Worker peak RSS with every range slot offered",
        "",
        f"`{result['command']}` — {result['what']}",
        "",
        *table(
            [
                "profile",
                "peak RSS (MiB)",
                "answers in flight, peak (MiB)",
                "blocks indexed",
                "watched s",
            ],
            (
                [
                    profile,
                    f"{result[profile]['worker_peak_rss_mib']:,}",
                    f"{result[profile]['peak_in_flight_bytes'] / 2**20:,.1f}",
                    f"{result[profile]['blocks_indexed_when_stopped'] or 0:,.0f}",
                    result[profile]["watched_seconds"],
                ]
                for profile in profiles
            ),
        ),
    ]
    lines += ["", f"Peak ratio {' / '.join(profiles)}: **{result['peak_ratio']}**.", ""]
    return lines


def partitioning_section(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Table layout: unpartitioned vs range-partitioned by block number",
        "",
        _provenance(result),
        "",
        result.get("setup", ""),
        "",
        *table(
            ["measure", "unpartitioned", "partitioned", "partitioned / unpartitioned"],
            (
                [
                    row["measure"],
                    f"{row['unpartitioned']:,}",
                    f"{row['partitioned']:,}",
                    row["ratio"],
                ]
                for row in result["table"]
            ),
        ),
    ]
    if per_segment := result.get("copy_seconds_per_segment"):
        ratios = [
            part / unp
            for unp, part in zip(
                per_segment["unpartitioned"], per_segment["partitioned"], strict=True
            )
            if unp
        ]
        ratios.sort()
        middle = len(ratios) // 2
        median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
        lines += [
            "",
            f"COPY seconds per segment, partitioned over unpartitioned (same segment, back to "
            f"back): median **{median:.3f}**, range {ratios[0]:.3f}–{ratios[-1]:.3f}.",
        ]
    lines += [""]
    for layout in ("unpartitioned", "partitioned"):
        lines += [
            f"EXPLAIN of one contract's logs over a block range, {layout}:",
            "",
            "```",
            *result["explain"][layout].splitlines(),
            "```",
            "",
        ]
    return lines


def anvil_datasets_section(result: dict[str, Any]) -> list[str]:
    lines = [
        "## A real node (anvil) with contracts that log: every dataset, side by side",
        "",
        _provenance(result),
        "",
        f"{result['blocks']:,} blocks, {result['transactions']:,} transactions, "
        f"{result['logs']:,} logs; medians of {result['rounds_run']} rounds (all tools in "
        "every round).",
        "",
        *table(
            ["pipeline", "transactions/s", "blocks/s", "of the raw ceiling", "runs (tx/s)"],
            (
                [
                    row["pipeline"],
                    f"{row['transactions_per_second']:,.0f}",
                    f"{row['blocks_per_second']:,.0f}",
                    f"{row['fraction_of_raw']:.0%}",
                    ", ".join(f"{r:,.0f}" for r in row["runs_transactions_per_second"]),
                ]
                for row in result["table"]
            ),
            align="lrrrl",
        ),
    ]
    lines += ["", *result.get("notes", []), ""]
    if phases := result.get("indexer_phase_seconds"):
        lines += [f"Indexer time by phase (its own metrics, summed over a run): {phases}", ""]
    if hot := result.get("indexer_hot_frames"):
        lines += ["py-spy on the worker (share of samples, busiest of our own frames):", ""]
        lines += [f"- {frame}: {share:.0%}" for frame, share in hot.items()]
        lines.append("")
    return lines


def tuning_section(result: dict[str, Any]) -> list[str]:
    lines = ["## Tuning: one knob at a time around the defaults", "", _provenance(result), ""]
    for part in ("worker", "temporal"):
        if part not in result:
            continue
        tuned = result[part]
        lines += [
            f"**{part}** — {tuned['measure']}, medians of {result['rounds']} interleaved rounds:",
            "",
            *table(
                ["configuration", "median", "runs", "× defaults"],
                (
                    [
                        row["configuration"],
                        f"{row['median']:,} {row['unit']}",
                        ", ".join(map(str, row["runs"])),
                        row["ratio_to_defaults"],
                    ]
                    for row in tuned["table"]
                ),
                align="lrlr",
            ),
            "",
        ]
    return lines


def anvil_section(result: dict[str, Any], title: str) -> list[str]:
    avg = result["avg_txs_per_block"]
    rows = [
        ("anvil raw fetch, no parsing (ceiling)", result["raw_ceiling_blocks_per_second"]),
        (
            "anvil raw at the indexer's settings",
            result["raw_at_indexer_settings_blocks_per_second"],
        ),
        ("Fetcher fetch + parse, no Temporal or DB", result["parsed_ceiling_blocks_per_second"]),
        ("indexer end to end", result["indexer_blocks_per_second"]),
        ("ethereum-etl 2.4.2, defaults", result["ethereum_etl_blocks_per_second"]),
    ]
    ceiling = result["raw_ceiling_blocks_per_second"]
    lines = [
        f"## {title}",
        "",
        _provenance(result),
        "",
        f"{result['blocks']:,} blocks, {avg} transactions per block; settings "
        f"{result['settings']}; medians of {len(result['rounds'])} rounds.",
        "",
        *table(
            ["pipeline", "blocks/s", "transactions/s", "of the raw ceiling"],
            (
                [name, f"{bps:,.0f}", f"{bps * avg:,.0f}", f"{bps / ceiling:.0%}"]
                for name, bps in rows
                if bps
            ),
        ),
        "",
    ]
    lines += [
        "Ratios measured within each round (medians): indexer "
        f"**{result['indexer_fraction_of_raw_ceiling']:.0%}** of the raw ceiling (target "
        f"{result['target_fraction']:.0%}), ethereum-etl "
        f"{result['ethereum_etl_fraction_of_raw_ceiling'] or 0:.0%}.",
        "",
    ]
    if cores := result.get("anvil_cores_busy"):
        lines += [
            f"Cores anvil kept busy: {cores['raw_fetch']} of {result['machine']['cpus']} serving "
            f"the raw fetch, {cores['indexer_run']} during the indexer's run.",
            "",
        ]
    return lines


def simple_section(title: str, result: dict[str, Any], keys: list[str]) -> list[str]:
    lines = [f"## {title}", "", _provenance(result), ""]
    lines += [f"- {key}: {json.dumps(result.get(key))}" for key in keys if key in result]
    return [*lines, ""]


def main() -> None:
    lines = [
        "<!-- generated by bench/report.py from bench/results/*.json; do not edit -->",
        "# Benchmark report",
        "",
        "Every figure below was measured by the command shown with it, on the machine and at "
        "the commit named. This machine is shared: medians and same-run ratios mean more than "
        "absolute numbers.",
        "",
    ]
    if schedule := _load("schedule"):
        lines += schedule_section(schedule)
    if backlog := _load("backlog"):
        lines += backlog_section(backlog)
    if mainnet := _load("mainnet"):
        lines += mainnet_section(mainnet)
    if before := _load("mainnet-before-stream"):
        lines += mainnet_section(
            before, "Mainnet-shaped blocks before the streamed range (main before i14-stream)"
        )
    if aborted := _load("mainnet-aborted"):
        lines += [
            "### Mainnet-shaped blocks at default settings before the streamed range",
            "",
            _provenance(aborted),
            "",
            f"Stopped: {aborted['aborted']} (the run's guard on a shared machine). Ceilings in "
            f"the same run: fetch {aborted['fetch_ceiling_blocks_per_second']:,}, COPY "
            f"{aborted['copy_ceiling_blocks_per_second']:,}, bound "
            f"{aborted['bound_blocks_per_second']:,} blocks/s.",
            "",
        ]
    if worker_rss := _load("worker_rss"):
        lines += worker_rss_section(worker_rss)
    if partitioning := _load("partitioning"):
        lines += partitioning_section(partitioning)
    if anvil_datasets := _load("anvil-datasets"):
        lines += anvil_datasets_section(anvil_datasets)
    if tuning := _load("tuning"):
        lines += tuning_section(tuning)
    if anvil := _load("anvil"):
        lines += anvil_section(anvil, "A real node (anvil) and a peer (ethereum-etl): defaults")
    if anvil_knobs := _load("anvil-node-knobs"):
        lines += anvil_section(
            anvil_knobs, "A real node (anvil) and a peer (ethereum-etl): knobs for the node"
        )
    if overhead := _load("overhead"):
        lines += simple_section(
            "Observability overhead",
            overhead,
            ["median_blocks_per_second", "throughput_lost_percent", "target_lost_percent"],
        )
    for name in (
        "simchain",
        "simchain-default-receipts",
        "simchain-mainnet-blocks",
        "simchain-mainnet-receipts",
    ):
        if simchain := _load(name):
            profile, method = simchain.get("profile", "default"), simchain.get("method", "blocks")
            lines += simple_section(
                f"Simulated chain throughput (one core): {profile} profile, {method}",
                simchain,
                [
                    "blocks_per_server_cpu_second_median",
                    "blocks_per_second_median",
                    "bottleneck",
                    "batch_size",
                    "txs_per_block",
                ],
            )
    if status := _load("status"):
        lines += simple_section("GET /chains/status", status, list(status)[:12])
    if pg := _load("pg_health"):
        lines += simple_section("PostgreSQL health vs postgres_exporter", pg, list(pg)[:12])
    path = RESULTS / "REPORT.md"
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
