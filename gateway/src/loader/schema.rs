//! The ClickHouse schema, created idempotently by numbered migrations that
//! are recorded in `<db>.schema_migrations`.
//!
//! Every statement runs on Debian's ClickHouse 18.16 (the live tests) and on
//! current ClickHouse (checked in the test run with chDB): no `DateTime64`,
//! `LowCardinality`, `Nullable` aggregate states or `SimpleAggregateFunction`,
//! which 18.16 lacks or types differently.
//!
//! - `<table>`: one row per event, `ReplacingMergeTree` ordered by
//!   `event_id`, so a redelivered event collapses into one row on merge;
//!   exact queries use `FINAL`.
//! - `<table>_per_minute`: `AggregatingMergeTree` fed by a materialized view:
//!   count, failures and P50/P95/P99 of `duration_ms` per minute, tool,
//!   command and event type. A materialized view fires on every insert,
//!   before any merge deduplicates, so the loader never inserts an event it
//!   has inserted before (it looks up the ids of redelivered messages first):
//!   duplicates stop at the loader, and the aggregate counts each event once.
//! - `dead_letters`: messages the loader could not load after
//!   `loader.max_deliveries` tries, and dead letters the gateway published
//!   (opt-in), with the reason.

/// One migration: a version, what it does, its statements.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    statements: &'static [&'static str],
}

/// Created before anything else, so the applied versions can be read.
const BOOTSTRAP: &[&str] = &[
    "CREATE DATABASE IF NOT EXISTS {db}",
    "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (\n  version UInt32,\n  name String,\n  applied_at DateTime('UTC')\n) ENGINE = MergeTree ORDER BY version",
];

/// The migrations, oldest first. A released migration is never edited: add
/// a new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events table",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.{table} (\n  event_id UUID,\n  timestamp DateTime('UTC'),\n  timestamp_ms UInt64,\n  received_at DateTime('UTC'),\n  level String,\n  event_type String,\n  tool String,\n  command String,\n  duration_ms Float64,\n  has_duration UInt8,\n  error_type String,\n  failed UInt8,\n  installation_id String,\n  tool_version String,\n  os String,\n  route String,\n  event String\n) ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(timestamp)\nORDER BY event_id",
        ],
    },
    Migration {
        version: 2,
        name: "per-minute aggregate",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.{table}_per_minute (\n  minute DateTime('UTC'),\n  tool String,\n  command String,\n  event_type String,\n  events AggregateFunction(count),\n  failures AggregateFunction(sum, UInt64),\n  duration AggregateFunction(quantilesIf(0.5, 0.95, 0.99), Float64, UInt8)\n) ENGINE = AggregatingMergeTree\nPARTITION BY toYYYYMM(minute)\nORDER BY (minute, tool, command, event_type)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{table}_per_minute_mv TO {db}.{table}_per_minute AS\nSELECT\n  toStartOfMinute(timestamp) AS minute,\n  tool,\n  command,\n  event_type,\n  countState() AS events,\n  sumState(toUInt64(failed)) AS failures,\n  quantilesIfState(0.5, 0.95, 0.99)(duration_ms, has_duration) AS duration\nFROM {db}.{table}\nGROUP BY minute, tool, command, event_type",
        ],
    },
    Migration {
        version: 3,
        name: "dead-letter table",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {db}.dead_letters (\n  at DateTime('UTC'),\n  source String,\n  subject String,\n  stream_sequence UInt64,\n  deliveries UInt32,\n  error String,\n  payload String\n) ENGINE = MergeTree\nPARTITION BY toYYYYMM(at)\nORDER BY (at, stream_sequence)",
        ],
    },
];

fn render(statement: &str, db: &str, table: &str) -> String {
    statement.replace("{db}", db).replace("{table}", table)
}

/// Every statement, in order, for `db` and `table`: what `gateway load
/// --print-schema` prints and what the test run checks on current ClickHouse.
pub fn all_statements(db: &str, table: &str) -> Vec<String> {
    BOOTSTRAP
        .iter()
        .copied()
        .chain(MIGRATIONS.iter().flat_map(|m| m.statements.iter().copied()))
        .map(|s| render(s, db, table))
        .collect()
}

/// Why the schema could not be created.
#[derive(Debug, thiserror::Error)]
#[error("migration {version} ({name}) failed: {source}")]
pub struct MigrationError {
    pub version: u32,
    pub name: &'static str,
    #[source]
    pub source: clickhouse::error::Error,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct Version {
    version: u32,
}

/// Apply what is missing. Safe to run from several loaders at once: every
/// statement is `IF NOT EXISTS`. Returns the versions applied now.
pub async fn migrate(
    client: &clickhouse::Client,
    db: &str,
    table: &str,
    extra_tables: &[String],
) -> Result<Vec<u32>, MigrationError> {
    // Run one statement; a failure names the migration it belongs to.
    let execute = |sql: String, version: u32, name: &'static str| async move {
        client
            .query(&sql)
            .execute()
            .await
            .map_err(|source| MigrationError {
                version,
                name,
                source,
            })
    };
    for s in BOOTSTRAP {
        execute(render(s, db, table), 0, "bootstrap").await?;
    }
    let applied: Vec<u32> = client
        .query(&format!("SELECT version FROM {db}.schema_migrations"))
        .fetch_all::<Version>()
        .await
        .map_err(|source| MigrationError {
            version: 0,
            name: "reading schema_migrations",
            source,
        })?
        .into_iter()
        .map(|v| v.version)
        .collect();
    let mut now = Vec::new();
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            continue;
        }
        for s in m.statements {
            execute(render(s, db, table), m.version, m.name).await?;
        }
        let record = format!(
            "INSERT INTO {db}.schema_migrations (version, name, applied_at) VALUES ({}, '{}', now())",
            m.version,
            m.name.replace('\'', "")
        );
        execute(record, m.version, m.name).await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "ClickHouse migration applied"
        );
        now.push(m.version);
    }
    // Routed destinations with a table of their own get the events table's shape.
    for t in extra_tables.iter().filter(|t| *t != table) {
        let sql = format!("CREATE TABLE IF NOT EXISTS {db}.{t} AS {db}.{table}");
        execute(sql, 0, "destination table").await?;
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_statements_are_idempotent() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration versions increase");
            last = m.version;
        }
        for s in all_statements("wraith", "events") {
            assert!(
                s.contains("IF NOT EXISTS"),
                "every statement can run twice: {s}"
            );
            assert!(!s.contains('{'), "every placeholder filled: {s}");
        }
    }
}
