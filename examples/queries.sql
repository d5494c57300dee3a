-- Analyst queries over the loader's schema (`gateway load --print-schema`).
-- Each statement ends with `;` and is run by the tests: against Debian's
-- ClickHouse 18.16 after a known load (the numbers are checked), and on
-- current ClickHouse with chDB. `FINAL` makes a query exact even before
-- ReplacingMergeTree has merged away a redelivered event.

-- Events in the last 24 hours by type.
SELECT event_type, count() AS events
FROM wraith.events FINAL
WHERE received_at > now() - INTERVAL 1 DAY
GROUP BY event_type
ORDER BY events DESC, event_type;

-- Failure rate by tool: share of tool_failed among finished commands, in %.
SELECT
    tool,
    countIf(event_type = 'tool_succeeded') AS succeeded,
    countIf(event_type = 'tool_failed') AS failures,
    round(failures / (succeeded + failures) * 100, 2) AS failure_rate
FROM wraith.events FINAL
WHERE tool != ''
GROUP BY tool
ORDER BY tool;

-- Most common errors.
SELECT error_type, count() AS occurrences
FROM wraith.events FINAL
WHERE error_type != ''
GROUP BY error_type
ORDER BY occurrences DESC, error_type
LIMIT 10;

-- Per minute, tool, command and event type: events, failures and the
-- P50/P95/P99 of duration_ms, from the aggregate the loader keeps.
SELECT
    minute,
    tool,
    command,
    event_type,
    countMerge(events) AS events,
    sumMerge(failures) AS failures,
    quantilesIfMerge(0.5, 0.95, 0.99)(duration) AS duration_p50_p95_p99
FROM wraith.events_per_minute
WHERE minute > now() - INTERVAL 1 DAY
GROUP BY minute, tool, command, event_type
ORDER BY minute, tool, command, event_type;
