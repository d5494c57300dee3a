//! `gateway check`: load every plugin of a folder and, with a sample file,
//! show what the chain does to each event — without starting a server.

use crate::config::Config;
use crate::host::{Host, Limits};
use crate::pipeline::manifest::Manifest;
use crate::pipeline::registry::Registry;
use crate::pipeline::trace::Trace;
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
            "  ok    {:<20} sha256 {}  on_error {}  {}",
            r.name,
            &r.sha256[..12],
            link.on_error,
            r.contract
        )?;
        for sh in &link.shadows {
            writeln!(
                out,
                "  ok    {:<20} sha256 {}  shadow of {} (compared, never applied)",
                sh.runtime.name,
                &sh.runtime.sha256[..12],
                r.name
            )?;
        }
    }
    for (name, error) in registry.unattached_shadows() {
        writeln!(out, "  WARN  {name}: {error}")?;
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
        let t = chain.trace(event);
        write_trace(out, &t)?;
    }
    Ok(all_loaded)
}

/// A trace as `check --sample` prints it: the event before, one line per
/// plugin with its verdict and the paths it changed, the event after.
pub fn write_trace(out: &mut dyn Write, t: &Trace) -> std::io::Result<()> {
    let json = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    writeln!(out, "before:  {}", json(&t.before))?;
    for s in &t.steps {
        writeln!(out, "{}", step_line(s, ""))?;
        for shadow in &s.shadows {
            writeln!(out, "{}", step_line(shadow, "  shadow "))?;
        }
    }
    match (&t.after, t.verdict) {
        (Some(after), _) => {
            writeln!(out, "after:   {}", json(after))?;
            writeln!(
                out,
                "verdict: keep -> {}",
                t.destination
                    .as_deref()
                    .unwrap_or(crate::pipeline::DEFAULT_DESTINATION)
            )?;
        }
        (None, "drop") => writeln!(
            out,
            "verdict: dropped by {}: {}",
            t.plugin.as_deref().unwrap_or("?"),
            t.reason.as_deref().unwrap_or("")
        )?,
        (None, _) => {
            let what = t
                .steps
                .last()
                .map(|s| {
                    if s.verdict == "reject" {
                        "rejected"
                    } else {
                        "faulted"
                    }
                })
                .unwrap_or("rejected");
            writeln!(
                out,
                "verdict: dead-letter ({what} by {}): {}",
                t.plugin.as_deref().unwrap_or("?"),
                t.reason.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

/// One plugin's answer on one line: name, verdict, destination or reason,
/// edited paths.
fn step_line(s: &crate::pipeline::trace::Step, prefix: &str) -> String {
    let mut line = format!("  {prefix}{:<20} {:<6}", s.plugin, s.verdict);
    if let Some(d) = &s.destination {
        line.push_str(&format!(" -> {d}"));
    }
    if let Some(r) = &s.reason {
        line.push_str(&format!(" ({r})"));
    }
    if !s.edits.is_empty() {
        let edits: Vec<String> = s
            .edits
            .iter()
            .map(|e| format!("{} {}", e.op, e.path))
            .collect();
        line.push_str(&format!("  edits: {}", edits.join(", ")));
    }
    line.trim_end().to_string()
}
