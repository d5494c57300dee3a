use crate::support::*;
use serde_json::json;
use std::time::Duration;

/// A faulty plugin after a well-behaved one: the event that faults is
/// dead-lettered with the reason (the whole batch, when the fault is not one
/// an event causes on its own: a malformed answer), other events and
/// batches pass, the gateway keeps serving.
fn check_fault(fixture: &'static str, trigger: &str, reason_needle: &str, metric_reason: &str) {
    let isolated = metric_reason != "malformed";
    let gw = Gateway::start(&[("upper", "a-upper"), (fixture, "b-faulty")]);
    let (status, answer) = gw.post_json("/v1/events", &json!([event(1), event(2)]));
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (200, Some(2)),
        "{answer}"
    );

    let mut bad = event(3);
    bad[trigger] = json!(true);
    let (status, answer) = gw.post_json("/v1/events", &json!([event(4), bad]));
    assert_eq!(status, 200, "{answer}");
    let faulted = if isolated { 1 } else { 2 };
    assert_eq!(answer["accepted"], 2 - faulted, "{answer}");
    assert_eq!(answer["dead_lettered"], faulted, "{answer}");
    let dlq = gw.lines("dlq");
    assert_eq!(dlq.len(), faulted as usize);
    for d in &dlq {
        assert_eq!(d["dlq"]["plugin"], "b-faulty");
        assert_eq!(d["dlq"]["kind"], "faulted");
        let reason = d["dlq"]["reason"].as_str().unwrap();
        assert!(
            reason.contains(reason_needle),
            "{reason:?} lacks {reason_needle:?}"
        );
        if isolated {
            assert!(reason.contains("faults the plugin on its own"), "{reason}");
        }
    }
    // Fail closed: the faulting event did not reach the store, and it is
    // dead-lettered as the faulting plugin received it; the good one went on.
    let stored = gw.lines("events");
    assert_eq!(stored.len(), 2 + 2 - faulted as usize);
    if isolated {
        assert_eq!(dlq[0]["event"]["command"], "CMD-3");
        assert_eq!(stored[2]["command"], "CMD-4");
    } else {
        assert_eq!(dlq[0]["event"]["command"], "CMD-4");
    }

    // The instance was rebuilt: the next batch goes through.
    let (status, answer) = gw.post_json("/v1/events", &json!([event(5)]));
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    assert_eq!(gw.lines("events").len(), stored.len() + 1);
    let p = gw.plugin("b-faulty").unwrap();
    assert_eq!(p["faults"], 1);
    assert_eq!(p["faulted"], faulted);
    assert_eq!(p["state"], "active");
    assert!(p["last_error"].as_str().unwrap().contains(reason_needle));
    let metrics = gw.get_text("/metrics");
    let line =
        format!("wraith_plugin_faults_total{{plugin=\"b-faulty\",reason=\"{metric_reason}\"}} 1");
    assert!(metrics.contains(&line), "no {line} in\n{metrics}");
    assert_eq!(gw.get_json("/health")["status"], "ok");
}

#[test]
fn a_trap_dead_letters_the_batch() {
    check_fault("trap", "boom", "boom requested by the event", "trap");
}

#[test]
fn an_endless_loop_times_out() {
    check_fault("spin", "spin", "timed out", "timeout");
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    check_fault("hog", "hog", "memory limit exceeded", "memory");
}

#[test]
fn a_malformed_answer_is_a_fault() {
    check_fault(
        "malformed",
        "malformed",
        "malformed answer: edit 0 names event",
        "malformed",
    );
}

#[test]
fn repeated_faults_quarantine_the_plugin_until_it_is_replaced() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("trap", "trap")],
        extra_config: "quarantine_after = 3\n".into(),
        ..Default::default()
    });
    let mut bad = event(0);
    bad["boom"] = json!(true);
    for _ in 0..3 {
        let (s, a) = gw.post_json("/v1/events", &json!([bad.clone()]));
        assert_eq!((s, a["dead_lettered"].as_u64()), (200, Some(1)));
    }
    let p = gw.plugin("trap").unwrap();
    assert_eq!(p["state"], "quarantined");
    // Quarantined and fail-closed: even good events are dead-lettered, unprocessed.
    let (s, a) = gw.post_json("/v1/events", &json!([event(1)]));
    assert_eq!((s, a["dead_lettered"].as_u64()), (200, Some(1)), "{a}");
    let last = gw.lines("dlq").pop().unwrap();
    assert_eq!(last["dlq"]["kind"], "quarantined");
    assert!(
        gw.get_text("/metrics")
            .contains("wraith_plugin_quarantined{plugin=\"trap\"} 1")
    );
    gw.wait_for_log("quarantined");
    // Replacing the file lifts the quarantine.
    install(&gw.plugins_dir(), "upper", "trap");
    gw.wait_for("the replacement to load", Duration::from_secs(10), |g| {
        g.plugin("trap")
            .map(|p| p["state"] == "active")
            .unwrap_or(false)
    });
    let (s, a) = gw.post_json("/v1/events", &json!([event(2)]));
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
    assert_eq!(gw.lines("events")[0]["command"], "CMD-2");
    // The quarantine gauge is down again.
    gw.assert_metrics(&["wraith_plugin_quarantined{plugin=\"trap\"} 0"]);
}

#[test]
fn a_quarantined_fail_open_plugin_is_skipped() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("trap", "enricher"), ("upper", "upper")],
        manifest: Some("[plugins.enricher]\non_error = \"pass\"\n".into()),
        extra_config: "quarantine_after = 2\n".into(),
        ..Default::default()
    });
    let mut bad = event(0);
    bad["boom"] = json!(true);
    for _ in 0..2 {
        let (s, a) = gw.post_json("/v1/events", &json!([bad.clone()]));
        assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
    }
    assert_eq!(gw.plugin("enricher").unwrap()["state"], "quarantined");
    // Now even a batch that would make it trap is not handed to it: it goes
    // on, unprocessed by the quarantined plugin, through the rest of the chain.
    let (s, a) = gw.post_json("/v1/events", &json!([bad.clone(), event(1)]));
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(2)), "{a}");
    let stored = gw.lines("events");
    assert_eq!(stored.len(), 4);
    assert!(
        stored
            .iter()
            .all(|e| e["command"].as_str().unwrap().starts_with("CMD-"))
    );
    assert!(gw.lines("dlq").is_empty());
    let p = gw.plugin("enricher").unwrap();
    assert_eq!(
        p["faults"], 2,
        "the quarantined plugin was called again: {p}"
    );
    gw.assert_metrics(&[
        "wraith_plugin_quarantined{plugin=\"enricher\"} 1",
        "wraith_plugin_events_total{plugin=\"enricher\",outcome=\"passed\"} 4",
        "wraith_plugin_faults_total{plugin=\"enricher\",reason=\"trap\"} 2",
    ]);
}

#[test]
fn fail_open_plugins_pass_the_batch_on_unchanged() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("trap", "enricher"), ("upper", "upper")],
        manifest: Some("[plugins.enricher]\non_error = \"pass\"\n".into()),
        ..Default::default()
    });
    let mut bad = event(1);
    bad["boom"] = json!(true);
    let (s, a) = gw.post_json("/v1/events", &json!([bad, event(2)]));
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(2)), "{a}");
    let stored = gw.lines("events");
    // The faulting event skipped the plugin; both went through the next one.
    assert_eq!(stored[0]["command"], "CMD-1");
    assert_eq!(stored[1]["command"], "CMD-2");
    assert!(gw.lines("dlq").is_empty());
    let metrics = gw.get_text("/metrics");
    assert!(
        metrics.contains("wraith_plugin_events_total{plugin=\"enricher\",outcome=\"passed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wraith_plugin_poison_events_total{plugin=\"enricher\"} 1"),
        "{metrics}"
    );
}

#[test]
fn leaking_instances_are_recycled_before_they_fail() {
    // 1 MiB leaked per call, a 32 MiB cap and a 16 MiB high-water mark: only
    // recycling keeps 60 calls alive.
    let gw = Gateway::start(&[("leak", "leak")]);
    for n in 0..60 {
        let (s, a) = gw.post_json("/v1/events", &json!([event(n)]));
        assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "call {n}: {a}");
    }
    let p = gw.plugin("leak").unwrap();
    assert_eq!(p["faults"], 0);
    let metrics = gw.get_text("/metrics");
    assert!(
        metrics
            .contains("wraith_plugin_instances_recycled_total{plugin=\"leak\",reason=\"memory\"}"),
        "{metrics}"
    );
    assert_eq!(gw.lines("events").len(), 60);
}

#[test]
fn instances_are_recycled_after_a_number_of_calls() {
    // The same leaking plugin, but every instance is replaced after 5 calls,
    // long before it nears the 16 MiB high-water mark.
    let gw = Gateway::start_with(Options {
        plugins: vec![("leak", "leak")],
        extra_config: "max_calls_per_instance = 5\n".into(),
        ..Default::default()
    });
    for n in 0..60 {
        let (s, a) = gw.post_json("/v1/events", &json!([event(n)]));
        assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "call {n}: {a}");
    }
    let metrics = gw.assert_metrics(&[
        "wraith_plugin_instances_recycled_total{plugin=\"leak\",reason=\"calls\"} 12",
    ]);
    assert!(
        !metrics.contains("reason=\"memory\""),
        "recycled for memory although calls came first:\n{metrics}"
    );
    assert_eq!(gw.plugin("leak").unwrap()["faults"], 0);
    assert_eq!(gw.lines("events").len(), 60);
}

#[test]
fn plugin_instances_are_bounded_by_the_chain_workers() {
    // Eight clients at once, but only two batches run through the chain at a
    // time: no plugin needs more than two instances (and their memory).
    let gw = std::sync::Arc::new(Gateway::start_with(Options {
        plugins: vec![("upper", "a-upper"), ("scrub-email", "b-scrub")],
        extra_config: "workers = 2\n".into(),
        ..Default::default()
    }));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let gw = gw.clone();
            std::thread::spawn(move || {
                for r in 0..15 {
                    let batch: Vec<_> = (0..40).map(|k| event(c * 10_000 + r * 100 + k)).collect();
                    let (s, a) = gw.post_json("/v1/events", &json!(batch));
                    assert_eq!((s, a["accepted"].as_u64()), (200, Some(40)), "{a}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    for name in ["a-upper", "b-scrub"] {
        let p = gw.plugin(name).unwrap();
        let peak = p["peak_instances"].as_u64().unwrap();
        assert!(
            (1..=2).contains(&peak),
            "{name}: {peak} instances at once: {p}"
        );
        assert!(p["instances"].as_u64().unwrap() <= 2, "{p}");
        assert_eq!(p["events_in"], 8 * 15 * 40);
    }
    assert_eq!(gw.lines("events").len(), 8 * 15 * 40);
}

/// One event that faults among 100 ordinary ones, for each kind of fault:
/// exactly that event is dead-lettered, the 99 others are processed and
/// stored.
#[test]
fn a_poison_event_is_isolated_for_each_fault_kind() {
    for (fixture, trigger, needle) in [
        ("trap", "boom", "boom requested by the event"),
        ("spin", "spin", "timed out"),
        ("hog", "hog", "memory limit exceeded"),
    ] {
        let gw = Gateway::start(&[("upper", "a-upper"), (fixture, "b-faulty")]);
        let mut batch: Vec<serde_json::Value> = (0..100).map(event).collect();
        batch[37][trigger] = json!(true);
        let (s, a) = gw.post_json("/v1/events", &serde_json::Value::Array(batch));
        assert_eq!(s, 200, "{fixture}: {a}");
        assert_eq!(
            (a["accepted"].as_u64(), a["dead_lettered"].as_u64()),
            (Some(99), Some(1)),
            "{fixture}: {a}"
        );
        let dlq = gw.lines("dlq");
        assert_eq!(dlq.len(), 1, "{fixture}");
        assert_eq!(dlq[0]["event"]["n"], 37, "{fixture}");
        assert_eq!(dlq[0]["dlq"]["kind"], "faulted");
        assert!(
            dlq[0]["dlq"]["reason"].as_str().unwrap().contains(needle),
            "{fixture}: {}",
            dlq[0]
        );
        let stored = gw.lines("events");
        assert_eq!(stored.len(), 99, "{fixture}");
        assert!(
            stored
                .iter()
                .all(|e| e["n"] != 37 && e["command"].as_str().unwrap().starts_with("CMD-"))
        );
        let metrics = gw.get_text("/metrics");
        assert!(
            metrics.contains("wraith_plugin_poison_events_total{plugin=\"b-faulty\"} 1"),
            "{fixture}: {metrics}"
        );
        // Halving 100 events down to one: two calls a level, at most seven levels.
        let calls: u64 = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("wraith_plugin_isolation_calls_total{plugin=\"b-faulty\"} ")
            })
            .unwrap()
            .parse()
            .unwrap();
        assert!((2..=14).contains(&calls), "{fixture}: {calls} extra calls");
        let p = gw.plugin("b-faulty").unwrap();
        assert_eq!(
            (
                p["faults"].as_u64(),
                p["faulted"].as_u64(),
                p["state"].as_str()
            ),
            (Some(1), Some(1), Some("active")),
            "{p}"
        );
    }
}

/// A plugin that faults on every event: the batch is dead-lettered after a
/// bounded number of extra calls, not one call per event.
#[test]
fn a_plugin_faulting_on_everything_costs_a_few_calls() {
    let gw = Gateway::start(&[("trap", "trap")]);
    let batch: Vec<serde_json::Value> = (0..100)
        .map(|n| {
            let mut e = event(n);
            e["boom"] = json!(true);
            e
        })
        .collect();
    let (s, a) = gw.post_json("/v1/events", &serde_json::Value::Array(batch));
    assert_eq!((s, a["dead_lettered"].as_u64()), (200, Some(100)), "{a}");
    let p = gw.plugin("trap").unwrap();
    // The batch, then its two halves and four quarters.
    assert_eq!(p["calls"], 7, "{p}");
    assert_eq!(p["faulted"], 100, "{p}");
    gw.assert_metrics(&[
        "wraith_plugin_isolation_calls_total{plugin=\"trap\"} 6",
        "wraith_plugin_poison_events_total{plugin=\"trap\"} 0",
    ]);
}
