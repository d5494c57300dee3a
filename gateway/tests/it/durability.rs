//! Nothing acknowledged is lost when the process dies without warning.

use crate::support::{Gateway, Options, event};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every event's `n` in every file under `dir`, counted. A SIGKILL may cut
/// the write of a batch that was never acknowledged, so the last line of a
/// file may be torn; anything else that does not parse fails the test.
fn written(dir: &Path) -> (HashMap<u64, usize>, usize) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut seen = HashMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let complete = text.ends_with('\n') || text.is_empty();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => *seen.entry(v["n"].as_u64().unwrap()).or_default() += 1,
                Err(e) => assert!(
                    i + 1 == lines.len() && !complete,
                    "{} line {}: {e}: {line}",
                    f.display(),
                    i + 1
                ),
            }
        }
    }
    (seen, files.len())
}

#[test]
fn sigkill_loses_nothing_that_was_acknowledged() {
    let mut gw = Gateway::start_with(Options {
        plugins: vec![("upper", "upper")],
        fsync: true,
        ..Default::default()
    });
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let clients: Vec<_> = (0..4u64)
        .map(|c| {
            let (url, http, acked) = (gw.url.clone(), gw.http.clone(), acked.clone());
            std::thread::spawn(move || {
                for k in 0.. {
                    let ns: Vec<u64> = (0..10).map(|i| c * 1_000_000 + k * 10 + i).collect();
                    let body: Vec<Value> = ns.iter().map(|&n| event(n as usize)).collect();
                    match http.post(format!("{url}/v1/events")).json(&body).send() {
                        Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(ns),
                        Ok(r) => panic!("unexpected answer {}", r.status()),
                        // The gateway is gone: nothing more is acknowledged.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 2_000 {
        assert!(Instant::now() < deadline, "the gateway took too few events");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL mid-stream: no drain, no flush, requests cut off.
    gw.kill_and_restart();
    for c in clients {
        c.join().unwrap();
    }

    let events = gw.data_dir().join("events");
    let acked = acked.lock().unwrap().clone();
    let (seen, files_before) = written(&events);
    let missing: Vec<_> = acked.iter().filter(|n| !seen.contains_key(n)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events are missing, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "events written twice: {twice:?}");

    // The restarted gateway writes to a new file, never onto a torn line.
    let (status, _) = gw.post_json("/v1/events", &serde_json::json!([event(999_999_999)]));
    assert_eq!(status, 200);
    let (seen_after, files_after) = written(&events);
    assert_eq!(seen_after.get(&999_999_999), Some(&1));
    assert_eq!(
        files_after,
        files_before + 1,
        "a new file after the restart"
    );
}
