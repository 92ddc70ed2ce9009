"""promtool cases for alerts/groups/temporal_server.py (label sets as Server 1.32 emits them)."""

from __future__ import annotations

from alerts.cases import Check, Fires, Scenario, Suite

T = 'job="temporal",instance="127.0.0.1:8234"'
W1 = 'job="tindexer",instance="w1:9464"'
W2 = 'job="tindexer",instance="w2:9464"'
FRONTEND = f'{T},namespace="default",service_name="frontend"'


def rejected(operation: str, cause: str, scope: str, count: str) -> Fires:
    return Fires(
        {
            "namespace": "default",
            "operation": operation,
            "resource_exhausted_cause": cause,
            "resource_exhausted_scope": scope,
            "severity": "warning",
        },
        "The Temporal server refuses workflow starts with RESOURCE_EXHAUSTED.",
        f"Temporal refused {count} {operation} calls in namespace default over the last 2m:"
        f" cause {cause}, scope {scope}.",
        "tindexertemporalstartsrejected",
    )


def exhausted(operation: str, cause: str, scope: str) -> str:
    return (
        f'service_errors_resource_exhausted{{{FRONTEND},operation="{operation}",'
        f'resource_exhausted_cause="{cause}",resource_exhausted_scope="{scope}"}}'
    )


def buckets(series: str, labels: str, per_minute: dict[str, int]) -> tuple[tuple[str, str], ...]:
    """A histogram growing by `per_minute` cumulative counts per bucket."""
    return tuple(
        (f'{series}_bucket{{{labels},le="{le}"}}', f"0+{count}x40")
        for le, count in per_minute.items()
    )


PERSISTENCE = f'{T},namespace="default",service_name="history",operation="UpdateWorkflowExecution"'
PERSISTENCE_SLOW = Fires(
    {"service_name": "history", "operation": "UpdateWorkflowExecution", "severity": "warning"},
    "The Temporal server's database calls are slow at p99.",
    "Temporal history's UpdateWorkflowExecution took 1.99s at p99 over the last 5m.",
    "tindexertemporalpersistencelatencyhigh",
)

QUEUE = (
    f'{T},namespace="default",service_name="history",operation="RecordWorkflowTaskStarted",'
    'partition="__normal__",taskqueue="tindexer"'
)
SCHEDULE_TO_START_SLOW = Fires(
    {"namespace": "default", "taskqueue": "tindexer", "severity": "warning"},
    "Workflow tasks wait long for a worker.",
    "Workflow tasks on task queue tindexer (namespace default) waited 9.95s at p99 over the "
    "last 5m before a worker took them.",
    "tindexertemporalscheduletostarthigh",
)

NO_ACTIVITY_POLLERS = Fires(
    {"task_queue": "tindexer", "type": "activity", "severity": "critical"},
    "No worker polls one of the indexer's Temporal task queues.",
    "Task queue tindexer (activity tasks) has 0 pollers: nothing runs its work.",
    "tindexertaskqueuenopollers",
)

HISTORY_ERRORS = Fires(
    {"service_name": "history", "severity": "warning"},
    "A Temporal service fails a share of its requests.",
    "Temporal history failed 5% of its requests over the last 5m.",
    "tindexertemporalserviceerrors",
)


def requests(
    service: str, errors_per_minute: int, requests_per_minute: int
) -> tuple[tuple[str, str], ...]:
    labels = (
        f'{T},namespace="default",service_name="{service}",operation="RecordActivityTaskStarted"'
    )
    return (
        (f"service_errors{{{labels}}}", f"0+{errors_per_minute}x40"),
        (f"service_requests{{{labels}}}", f"0+{requests_per_minute}x40"),
    )


SUITE = Suite(
    "temporal_server",
    (
        Scenario(
            "the frontend refuses starts for its RPS limit, in both spellings of the cause; "
            "refused polls are not starts",
            (
                (exhausted("StartWorkflowExecution", "RpsLimit", "Namespace"), "0+30x10"),
                (
                    exhausted(
                        "SignalWithStartWorkflowExecution",
                        "RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT",
                        "RESOURCE_EXHAUSTED_SCOPE_NAMESPACE",
                    ),
                    "0+15x10",
                ),
                (exhausted("PollWorkflowTaskQueue", "RpsLimit", "Namespace"), "0+100x10"),
            ),
            (
                Check("1m", "TindexerTemporalStartsRejected"),  # pending
                Check(
                    "5m",
                    "TindexerTemporalStartsRejected",
                    (
                        rejected(
                            "SignalWithStartWorkflowExecution",
                            "RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT",
                            "RESOURCE_EXHAUSTED_SCOPE_NAMESPACE",
                            "30",
                        ),
                        rejected("StartWorkflowExecution", "RpsLimit", "Namespace", "60"),
                    ),
                ),
            ),
        ),
        Scenario(
            "the first refusals create the series (already at 40) and nothing follows: "
            "counted while the series is younger than the window",
            ((exhausted("StartWorkflowExecution", "RpsLimit", "Namespace"), "_x5 40x10"),),
            (
                Check("5m", "TindexerTemporalStartsRejected"),  # pending
                Check(
                    "6m",
                    "TindexerTemporalStartsRejected",
                    (rejected("StartWorkflowExecution", "RpsLimit", "Namespace", "40"),),
                ),
                Check("9m", "TindexerTemporalStartsRejected"),
            ),
        ),
        Scenario(
            "a burst of refusals that stopped is resolved once the window has passed",
            ((exhausted("StartWorkflowExecution", "RpsLimit", "Namespace"), "0+30x2 60x20"),),
            (Check("10m", "TindexerTemporalStartsRejected"),),
        ),
        Scenario(
            "UpdateWorkflowExecution takes 1-2 s every time; GetWorkflowExecution stays fast",
            (
                *buckets(
                    "persistence_latency",
                    PERSISTENCE,
                    {"0.5": 0, "1": 0, "2": 100, "+Inf": 100},
                ),
                *buckets(
                    "persistence_latency",
                    PERSISTENCE.replace("UpdateWorkflowExecution", "GetWorkflowExecution"),
                    {"0.5": 100, "1": 100, "2": 100, "+Inf": 100},
                ),
            ),
            (
                Check("8m", "TindexerTemporalPersistenceLatencyHigh"),  # pending
                Check("20m", "TindexerTemporalPersistenceLatencyHigh", (PERSISTENCE_SLOW,)),
            ),
        ),
        Scenario(
            "persistence under 0.5 s is healthy",
            (
                *buckets(
                    "persistence_latency",
                    PERSISTENCE,
                    {"0.5": 100, "1": 100, "2": 100, "+Inf": 100},
                ),
            ),
            (Check("20m", "TindexerTemporalPersistenceLatencyHigh"),),
        ),
        Scenario(
            "workflow tasks wait 5-10 s; slow activity tasks do not count",
            (
                *buckets(
                    "task_schedule_to_start_latency",
                    f'{QUEUE},task_type="Workflow"',
                    {"1": 0, "5": 0, "10": 60, "+Inf": 60},
                ),
                *buckets(
                    "task_schedule_to_start_latency",
                    f'{QUEUE},task_type="Activity"',
                    {"1": 0, "5": 0, "10": 0, "+Inf": 60},
                ),
            ),
            (
                Check("3m", "TindexerTemporalScheduleToStartHigh"),  # pending
                Check("10m", "TindexerTemporalScheduleToStartHigh", (SCHEDULE_TO_START_SLOW,)),
            ),
        ),
        Scenario(
            "workflow tasks taken within a second",
            (
                *buckets(
                    "task_schedule_to_start_latency",
                    f'{QUEUE},task_type="Workflow"',
                    {"1": 60, "5": 60, "10": 60, "+Inf": 60},
                ),
            ),
            (Check("20m", "TindexerTemporalScheduleToStartHigh"),),
        ),
        Scenario(
            "the activity workers stop polling from 6m; two processes report it: one alert",
            (
                (
                    f'tindexer_task_queue_pollers{{{W1},task_queue="tindexer",type="activity"}}',
                    "2x5 0x30",
                ),
                (
                    f'tindexer_task_queue_pollers{{{W2},task_queue="tindexer",type="activity"}}',
                    "2x5 0x30",
                ),
                (
                    f'tindexer_task_queue_pollers{{{W1},task_queue="tindexer",type="workflow"}}',
                    "2x40",
                ),
            ),
            (
                Check("8m", "TindexerTaskQueueNoPollers"),  # pending
                Check("15m", "TindexerTaskQueueNoPollers", (NO_ACTIVITY_POLLERS,)),
            ),
        ),
        Scenario(
            "one poller is enough",
            (
                (
                    f'tindexer_task_queue_pollers{{{W1},task_queue="tindexer",type="activity"}}',
                    "1x40",
                ),
            ),
            (Check("20m", "TindexerTaskQueueNoPollers"),),
        ),
        Scenario(
            "history fails 5 % of its requests; the frontend none",
            (*requests("history", 5, 100), *requests("frontend", 0, 1000)),
            (
                Check("10m", "TindexerTemporalServiceErrors"),  # pending
                Check("25m", "TindexerTemporalServiceErrors", (HISTORY_ERRORS,)),
            ),
        ),
        Scenario(
            "0.5 % is under the bar",
            requests("history", 1, 200),
            (Check("30m", "TindexerTemporalServiceErrors"),),
        ),
    ),
)
