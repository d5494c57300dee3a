//! `gateway check`: load every plugin of a folder and, with a sample file,
//! show what the chain does to each event — without starting a server.

use crate::config::Config;
use crate::host::{Host, Limits};
use crate::pipeline::manifest::Manifest;
use crate::pipeline::registry::Registry;
use crate::pipeline::{DeadLetterKind, Disposition};
use crate::telemetry::Metrics;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Why `check` could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("plugins folder {0} does not exist or is not a folder")]
    NoPluginsDir(String),
    #[error("cannot start the plugin host: {0}")]
    Host(String),
    #[error("cannot read sample file {path}: {source}")]
    Sample {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// Load the plugins (and run the sample through them), writing a report to
/// `out`. Returns whether every plugin loaded.
pub fn check(
    config: &Config,
    sample: Option<&Path>,
    out: &mut dyn Write,
) -> Result<bool, CheckError> {
    let dir = &config.plugins.dir;
    if !dir.is_dir() {
        return Err(CheckError::NoPluginsDir(dir.display().to_string()));
    }
    let metrics = Arc::new(Metrics::new());
    let host = Host::new(None, metrics).map_err(|e| CheckError::Host(format!("{e:#}")))?;
    let registry = Registry::new(
        dir.clone(),
        host,
        Limits::from_config(&config.plugins),
        config.plugins.max_batch,
    );
    let report = registry.reload();
    let chain = registry.chain();
    writeln!(out, "plugins in {}:", dir.display())?;
    let mut destinations_ok = true;
    match Manifest::load(dir) {
        Err(e) => writeln!(out, "  FAIL  {e}")?,
        Ok(m) => {
            let routed = m.routed_destinations();
            for (plugin, d) in config.unknown_destinations(&routed) {
                destinations_ok = false;
                writeln!(
                    out,
                    "  FAIL  {plugin} routes to `{d}`, which no sink knows: add [destinations.{d}] to the config (declared: {})",
                    config
                        .destinations
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
            }
        }
    }
    for link in &chain.links {
        let r = &link.runtime;
        writeln!(
            out,
            "  ok    {:<20} sha256 {}  on_error {}",
            r.name,
            &r.sha256[..12],
            link.on_error
        )?;
    }
    for (file, error) in &report.failed {
        writeln!(out, "  FAIL  {file}: {error}")?;
    }
    if chain.links.is_empty() && report.failed.is_empty() {
        writeln!(out, "  (no .wasm files)")?;
    }
    let all_loaded = report.failed.is_empty() && destinations_ok;
    let Some(sample) = sample else {
        return Ok(all_loaded);
    };
    let text = std::fs::read_to_string(sample).map_err(|source| CheckError::Sample {
        path: sample.display().to_string(),
        source,
    })?;
    writeln!(
        out,
        "\nsample {} through {} plugin(s):",
        sample.display(),
        chain.links.len()
    )?;
    let now = time::OffsetDateTime::now_utc();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        writeln!(out, "\n--- line {} ---", n + 1)?;
        let event = match serde_json::from_str::<Value>(line)
            .map_err(|e| format!("not valid JSON: {e}"))
            .and_then(|v| wraith_event::validate::normalize(v, now).map_err(|e| e.message))
        {
            Ok(e) => e,
            Err(e) => {
                writeln!(out, "invalid: {e}")?;
                continue;
            }
        };
        writeln!(
            out,
            "before:  {}",
            serde_json::to_string(&event).unwrap_or_default()
        )?;
        let d = chain.run(vec![event]).pop().expect("one in, one out");
        match d {
            Disposition::Keep { event, destination } => {
                writeln!(
                    out,
                    "after:   {}",
                    serde_json::to_string(&event).unwrap_or_default()
                )?;
                writeln!(out, "verdict: keep -> {destination}")?;
            }
            Disposition::Drop { plugin, reason } => {
                writeln!(out, "verdict: dropped by {plugin}: {reason}")?
            }
            Disposition::DeadLetter {
                plugin,
                kind,
                reason,
                ..
            } => {
                let what = match kind {
                    DeadLetterKind::Rejected => "rejected",
                    DeadLetterKind::Faulted => "faulted",
                    DeadLetterKind::Quarantined => "quarantined",
                };
                writeln!(out, "verdict: dead-letter ({what} by {plugin}): {reason}")?;
            }
        }
    }
    Ok(all_loaded)
}
