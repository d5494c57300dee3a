//! The operator verbs on a running gateway: `gateway reload`, `gateway stop`
//! (through the pid file in its data folder) and `gateway status` (through
//! its HTTP address).

use crate::{OpsArgs, StatusArgs, load_config};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use wraith_gateway::ops::{RELOAD_FILE, alive, running_pid};

fn data_dir(args: &OpsArgs) -> Result<PathBuf> {
    if let Some(d) = &args.data_dir {
        return Ok(d.clone());
    }
    Ok(load_config(args.config.as_ref())?.sinks.file.dir)
}

fn signal(pid: i32, sig: libc::c_int) -> Result<()> {
    // SAFETY: kill(2) with a pid read from the pid file and a fixed signal.
    if unsafe { libc::kill(pid, sig) } != 0 {
        bail!(
            "cannot signal the gateway (pid {pid}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// `gateway reload`: SIGHUP, then wait for the gateway to write the
/// outcome and print it. Exit status 1 when the config was refused.
pub fn reload(args: &OpsArgs) -> Result<ExitCode> {
    let dir = data_dir(args)?;
    let pid = running_pid(&dir)?;
    let file = dir.join(RELOAD_FILE);
    let before = std::fs::read(&file).ok();
    signal(pid, libc::SIGHUP)?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let text = loop {
        if let Ok(now) = std::fs::read(&file)
            && Some(&now) != before.as_ref()
        {
            break now;
        }
        if Instant::now() > deadline {
            bail!(
                "sent SIGHUP to the gateway (pid {pid}) but it wrote no outcome to {} within {} s; its log says more",
                file.display(),
                args.timeout
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let outcome: Value = serde_json::from_slice(&text)
        .with_context(|| format!("cannot read the reload outcome in {}", file.display()))?;
    let list = |k: &str| -> Vec<String> {
        outcome[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ok = outcome["ok"].as_bool() == Some(true);
    if ok {
        println!("reloaded the gateway (pid {pid})");
        let applied = list("applied");
        println!(
            "  applied:        {}",
            if applied.is_empty() {
                "nothing changed in the config".to_string()
            } else {
                applied.join(", ")
            }
        );
        let restart = list("restart_needed");
        if !restart.is_empty() {
            println!("  needs restart:  {}", restart.join(", "));
        }
    } else {
        println!(
            "the gateway (pid {pid}) kept its running config: {}",
            outcome["error"].as_str().unwrap_or("unknown error")
        );
    }
    println!(
        "  plugins:        chain generation {}",
        outcome["generation"]
    );
    for e in list("plugin_errors") {
        println!("  plugin error:   {e}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether the process is gone (a zombie, not yet reaped by its parent,
/// counts as gone: it has exited).
fn gone(pid: i32) -> bool {
    if !alive(pid) {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
        })
        .is_some_and(|state| state == 'Z' || state == 'X')
}

/// `gateway stop`: SIGTERM, then wait until the gateway has drained and
/// exited (it removes its pid file last, after the sinks are flushed).
pub fn stop(args: &OpsArgs) -> Result<ExitCode> {
    let dir = data_dir(args)?;
    let pid = running_pid(&dir)?;
    let started = Instant::now();
    signal(pid, libc::SIGTERM)?;
    let deadline = started + Duration::from_secs(args.timeout);
    while !gone(pid) {
        if Instant::now() > deadline {
            bail!(
                "the gateway (pid {pid}) is still running {} s after SIGTERM (still draining? server.shutdown_timeout bounds that); `kill -9 {pid}` stops it without draining",
                args.timeout
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "stopped the gateway (pid {pid}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn status_url(args: &StatusArgs) -> Result<String> {
    if let Some(u) = &args.url {
        return Ok(u.trim_end_matches('/').to_string());
    }
    let config = load_config(args.config.as_ref())?;
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(format!("http://{addr}"))
}

/// `gateway status`: `/v1/status` as a table (or as JSON).
pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    let base = status_url(args)?;
    let url = format!("{base}/v1/status");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(&url);
    if let Some(t) = &args.token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().with_context(|| {
        format!("cannot reach the gateway at {base} (is it running? --url or --config says where)")
    })?;
    let code = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    if code == 401 {
        bail!("the gateway at {base} needs an API token: pass --token or set WRAITH_TOKEN");
    }
    if code != 200 {
        bail!("{url} answered {code}: {body}");
    }
    let s: Value = serde_json::from_str(&body).with_context(|| format!("{url} sent no JSON"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&base, &s));
    Ok(ExitCode::SUCCESS)
}

fn num(v: &Value) -> String {
    v.as_u64().map(|n| n.to_string()).unwrap_or_default()
}

/// The status as terminal text: a header, the chain as a table, the sinks.
fn table(base: &str, s: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let up = s["uptime_seconds"].as_u64().unwrap_or(0);
    let _ = writeln!(
        out,
        "gateway {} at {base}, up {}h{:02}m{:02}s, chain generation {}",
        s["version"].as_str().unwrap_or("?"),
        up / 3600,
        up / 60 % 60,
        up % 60,
        s["generation"]
    );
    let t = &s["totals"];
    let _ = writeln!(
        out,
        "events: {} received, {} accepted, {} dropped, {} dead-lettered, {} invalid",
        num(&t["received"]),
        num(&t["accepted"]),
        num(&t["dropped"]),
        num(&t["dead_lettered"]),
        num(&t["invalid"])
    );
    if let Some(r) = s["rates"].as_array().and_then(|r| r.last()) {
        let _ = writeln!(
            out,
            "now: {:.0} events/s accepted",
            r["accepted"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(out);
    let header = [
        "#",
        "plugin",
        "state",
        "in",
        "kept",
        "dropped",
        "rejected",
        "faulted",
        "mean call",
        "last error",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for p in s["plugins"].as_array().into_iter().flatten() {
        let calls = p["calls"].as_u64().unwrap_or(0);
        let mean = if calls > 0 {
            format!(
                "{:.3} ms",
                p["call_seconds"].as_f64().unwrap_or(0.0) * 1000.0 / calls as f64
            )
        } else {
            "-".into()
        };
        let mut err: String = p["last_error"].as_str().unwrap_or("").to_string();
        if err.chars().count() > 60 {
            err = err.chars().take(57).collect::<String>() + "...";
        }
        rows.push(vec![
            p["position"]
                .as_u64()
                .map(|n| (n + 1).to_string())
                .unwrap_or_else(|| "-".into()),
            p["name"].as_str().unwrap_or("").to_string(),
            p["state"].as_str().unwrap_or("").to_string(),
            num(&p["events_in"]),
            num(&p["kept"]),
            num(&p["dropped"]),
            num(&p["rejected"]),
            num(&p["faulted"]),
            mean,
            err,
        ]);
    }
    if rows.len() == 1 {
        let _ = writeln!(out, "chain: no plugins (events pass through unchanged)");
    } else {
        let widths: Vec<usize> = (0..header.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let numeric = [0, 3, 4, 5, 6, 7, 8];
        for r in &rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                let w = widths[c];
                if numeric.contains(&c) {
                    let _ = write!(line, "{cell:>w$}  ");
                } else {
                    let _ = write!(line, "{cell:<w$}  ");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    let _ = writeln!(out);
    for (name, state) in s["sinks"].as_object().into_iter().flatten() {
        let st = state["state"].as_str().unwrap_or("?");
        match state["reason"].as_str() {
            Some(r) => {
                let _ = writeln!(out, "sink {name}: {st} ({r})");
            }
            None => {
                let _ = writeln!(out, "sink {name}: {st}");
            }
        }
    }
    if let Some(r) = s["last_reload"].as_object() {
        let _ = writeln!(
            out,
            "last reload: {} {}",
            r.get("at").and_then(Value::as_str).unwrap_or(""),
            if r.get("ok").and_then(Value::as_bool) == Some(true) {
                "ok".to_string()
            } else {
                format!(
                    "refused: {}",
                    r.get("error").and_then(Value::as_str).unwrap_or("")
                )
            }
        );
    }
    out
}
