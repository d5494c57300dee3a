use crate::support::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request's id and the event numbers it carried.
type Acked = (usize, Vec<usize>);

fn chain_names(gw: &Gateway) -> Vec<String> {
    let v = gw.get_json("/v1/plugins");
    v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "active")
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

/// The component's bytes with a custom section appended: a different file
/// (another hash) that behaves the same.
fn same_plugin_other_bytes(fixture_name: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(fixture(fixture_name)).unwrap();
    let name = b"wraith-test-build";
    let payload = b"another build";
    let size = 1 + name.len() + payload.len();
    assert!(size < 128, "one-byte LEB128 sizes only");
    bytes.extend([0u8, size as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.extend(payload);
    bytes
}

#[test]
fn hot_reload_under_load_loses_nothing() {
    // The default debounce, as an operator runs it.
    let gw = Arc::new(Gateway::start_with(Options {
        plugins: vec![("upper", "a-upper")],
        debounce: Some("250ms"),
        ..Default::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let mut senders = Vec::new();
    for t in 0..3 {
        let (gw, stop, acked) = (gw.clone(), stop.clone(), acked.clone());
        senders.push(std::thread::spawn(move || {
            let mut req = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = t * 1_000_000 + req;
                let ns: Vec<usize> = (0..5).map(|k| id * 10 + k).collect();
                let batch: Vec<Value> = ns
                    .iter()
                    .map(|&n| json!({"event_type": "t", "command": "run", "user": "ada@example.com", "n": n, "req": id}))
                    .collect();
                let (s, a) = gw.post_json("/v1/events", &json!(batch));
                assert_eq!(s, 200, "{a}");
                assert_eq!(a["accepted"], 5, "{a}");
                acked.lock().unwrap().push((id, ns));
                req += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    // Deploy a scrubber by renaming it into place, while requests flow.
    let dropped_at = Instant::now();
    install(&gw.plugins_dir(), "scrub-email", "b-scrub");
    gw.wait_for(
        "the new plugin in the chain",
        Duration::from_secs(10),
        |g| chain_names(g).contains(&"b-scrub".to_string()),
    );
    let added_after = dropped_at.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    // Replace the first plugin with another build of it, still under load.
    let old_sha = gw.plugin("a-upper").unwrap()["sha256"].clone();
    let tmp = gw.plugins_dir().join(".a-upper.wasm.tmp");
    std::fs::write(&tmp, same_plugin_other_bytes("upper")).unwrap();
    let replaced_at = Instant::now();
    std::fs::rename(&tmp, gw.plugins_dir().join("a-upper.wasm")).unwrap();
    gw.wait_for("the replacement", Duration::from_secs(10), |g| {
        g.plugin("a-upper")
            .is_some_and(|p| p["sha256"] != old_sha && p["state"] == "active")
    });
    let replaced_after = replaced_at.elapsed();
    assert_eq!(chain_names(&gw), ["a-upper", "b-scrub"]);
    std::thread::sleep(Duration::from_millis(500));
    // Remove the first plugin, still under load.
    let removed_at = Instant::now();
    std::fs::remove_file(gw.plugins_dir().join("a-upper.wasm")).unwrap();
    gw.wait_for("the removal", Duration::from_secs(10), |g| {
        chain_names(g) == ["b-scrub"]
    });
    let removed_after = removed_at.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    // How long each change took is reported, not asserted: on a loaded
    // machine it says nothing about the gateway (each wait above is bounded).
    for (what, took) in [
        ("an added plugin", added_after),
        ("a replaced plugin", replaced_after),
        ("a removal", removed_after),
    ] {
        eprintln!("{what}: live after {took:?}");
    }

    let stored = gw.lines("events");
    let acked = acked.lock().unwrap();
    let mut count: HashMap<u64, usize> = HashMap::new();
    for e in &stored {
        *count.entry(e["n"].as_u64().unwrap()).or_default() += 1;
    }
    let mut total = 0;
    for (_, ns) in acked.iter() {
        for n in ns {
            total += 1;
            assert_eq!(
                count.get(&(*n as u64)),
                Some(&1),
                "acked event {n} stored {:?} times",
                count.get(&(*n as u64))
            );
        }
    }
    assert_eq!(
        stored.len(),
        total,
        "stored events that were never acknowledged"
    );
    // Each request ran wholly on one chain: its events agree on both plugins.
    let mut by_req: HashMap<u64, Vec<(bool, bool)>> = HashMap::new();
    for e in &stored {
        let upper = e["command"] == "RUN";
        let scrubbed = e["user"] == "[email]";
        by_req
            .entry(e["req"].as_u64().unwrap())
            .or_default()
            .push((upper, scrubbed));
    }
    let mut seen = (false, false, false);
    for (req, flags) in by_req {
        assert!(
            flags.iter().all(|f| *f == flags[0]),
            "request {req} ran on two chains: {flags:?}"
        );
        match flags[0] {
            (true, false) => seen.0 = true,
            (true, true) => seen.1 = true,
            (false, true) => seen.2 = true,
            (false, false) => panic!("request {req} ran on no chain"),
        }
    }
    assert_eq!(
        seen,
        (true, true, true),
        "not every chain generation handled traffic"
    );
}

#[test]
fn a_broken_file_leaves_the_running_chain_working() {
    let gw = Gateway::start(&[("upper", "upper")]);
    // A new file that is not a component.
    std::fs::write(gw.plugins_dir().join("broken.wasm"), b"\0asm garbage").unwrap();
    gw.wait_for("the failure to be reported", Duration::from_secs(10), |g| {
        g.plugin("broken")
            .map(|p| p["state"] == "failed")
            .unwrap_or(false)
    });
    let p = gw.plugin("broken").unwrap();
    assert!(
        p["last_error"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{p}"
    );
    // A broken new version of a running plugin: the old one keeps running.
    let tmp = gw.plugins_dir().join(".upper.tmp");
    std::fs::write(&tmp, b"not wasm either").unwrap();
    std::fs::rename(&tmp, gw.plugins_dir().join("upper.wasm")).unwrap();
    gw.wait_for(
        "the failed upgrade to be reported",
        Duration::from_secs(10),
        |g| {
            g.plugin("upper")
                .map(|p| !p["last_error"].is_null())
                .unwrap_or(false)
        },
    );
    assert_eq!(gw.plugin("upper").unwrap()["state"], "active");
    let (s, a) = gw.post_json("/v1/events", &json!([event(1)]));
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)));
    assert_eq!(gw.lines("events")[0]["command"], "CMD-1");
    assert!(
        gw.get_text("/metrics")
            .contains("wraith_reloads_total{outcome=\"failed\"}")
    );
    gw.wait_for_log("previous version keeps running");
}

#[test]
fn a_file_still_being_written_is_waited_out() {
    let gw = Gateway::start_with(Options {
        debounce: Some("1s"),
        ..Default::default()
    });
    // Written in place in two pieces with a pause, as a slow copy does: the
    // gateway must not try the half-written file.
    let bytes = std::fs::read(fixture("upper")).unwrap();
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    let path = gw.plugins_dir().join("upper.wasm");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(first).unwrap();
    f.sync_all().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    f.write_all(rest).unwrap();
    drop(f);
    gw.wait_for("the plugin to load", Duration::from_secs(10), |g| {
        g.plugin("upper")
            .map(|p| p["state"] == "active")
            .unwrap_or(false)
    });
    let p = gw.plugin("upper").unwrap();
    assert!(p["last_error"].is_null(), "{p}");
    let metrics = gw.get_text("/metrics");
    let failed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wraith_reloads_total{outcome=\"failed\"} "))
        .unwrap_or("0");
    assert_eq!(failed, "0", "the half-written file was tried:\n{metrics}");
    let (s, a) = gw.post_json("/v1/events", &json!([event(1)]));
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)));
    assert_eq!(gw.lines("events")[0]["command"], "CMD-1");
}

#[test]
fn the_manifest_orders_and_configures_plugins() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("upper", "upper"), ("verdicts", "a-verdicts")],
        manifest: Some(
            "order = [\"upper\", \"a-verdicts\"]\n[plugins.upper.config]\nfield = \"tool\"\n"
                .into(),
        ),
        ..Default::default()
    });
    assert_eq!(chain_names(&gw), ["upper", "a-verdicts"]);
    gw.post_json("/v1/events", &json!([event(1)]));
    let e = &gw.lines("events")[0];
    assert_eq!(
        (e["tool"].as_str(), e["command"].as_str()),
        (Some("WRAITH-TEST"), Some("cmd-1"))
    );
    // A config the plugin refuses: the running version stays, the error names the field.
    std::fs::write(
        gw.plugins_dir().join("plugins.toml"),
        "order = [\"upper\", \"a-verdicts\"]\n[plugins.upper.config]\nfeild = \"tool\"\n",
    )
    .unwrap();
    gw.wait_for(
        "the refused config to be reported",
        Duration::from_secs(10),
        |g| {
            g.plugin("upper")
                .map(|p| !p["last_error"].is_null())
                .unwrap_or(false)
        },
    );
    let err = gw.plugin("upper").unwrap()["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("plugin `upper` refused its config") && err.contains("unknown field `feild`"),
        "{err}"
    );
    // An invalid manifest keeps everything as it was.
    std::fs::write(gw.plugins_dir().join("plugins.toml"), "order = [").unwrap();
    gw.wait_for("the manifest error", Duration::from_secs(10), |g| {
        !g.get_json("/v1/plugins")["manifest_error"].is_null()
    });
    gw.post_json("/v1/events", &json!([event(2)]));
    assert_eq!(gw.lines("events")[1]["tool"], "WRAITH-TEST");
    // A valid change of order and config is live within 2 s.
    let changed_at = Instant::now();
    std::fs::write(
        gw.plugins_dir().join("plugins.toml"),
        "order = [\"a-verdicts\", \"upper\"]\n[plugins.upper.config]\nfield = \"command\"\n",
    )
    .unwrap();
    gw.wait_for("the new order", Duration::from_secs(10), |g| {
        chain_names(g) == ["a-verdicts", "upper"]
    });
    let took = changed_at.elapsed();
    gw.post_json("/v1/events", &json!([event(3)]));
    let e = &gw.lines("events")[2];
    assert_eq!(
        (e["tool"].as_str(), e["command"].as_str()),
        (Some("wraith-test"), Some("CMD-3"))
    );
    assert!(
        took < Duration::from_secs(2),
        "a manifest change took {took:?} to go live"
    );
}

#[test]
fn init_refusing_its_config_keeps_the_plugin_out() {
    let gw = Gateway::start(&[("upper", "upper")]);
    std::fs::write(
        gw.plugins_dir().join("plugins.toml"),
        "[plugins.needs.config]\nthreshold = -1\n",
    )
    .unwrap();
    install(&gw.plugins_dir(), "bad-config", "needs");
    gw.wait_for("the init failure", Duration::from_secs(10), |g| {
        g.plugin("needs")
            .map(|p| p["state"] == "failed")
            .unwrap_or(false)
    });
    let err = gw.plugin("needs").unwrap()["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "plugin `needs` refused its config: field `threshold`: must not be negative"
    );
    assert_eq!(chain_names(&gw), ["upper"]);
    std::fs::write(
        gw.plugins_dir().join("plugins.toml"),
        "[plugins.needs.config]\nthreshold = 2\n",
    )
    .unwrap();
    gw.wait_for("the fixed config to load", Duration::from_secs(10), |g| {
        chain_names(g) == ["needs", "upper"]
    });
}

/// `wraith_reloads_total{outcome=...}`, 0 when absent.
fn reloads(gw: &Gateway, outcome: &str) -> u64 {
    let prefix = format!("wraith_reloads_total{{outcome=\"{outcome}\"}} ");
    gw.get_text("/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn the_folder_settles_after_a_reload_and_a_touch_changes_nothing() {
    let gw = Gateway::start(&[("upper", "upper")]);
    install(&gw.plugins_dir(), "scrub-email", "scrub");
    gw.wait_for("the new plugin", Duration::from_secs(10), |g| {
        chain_names(g).len() == 2
    });
    let generation = gw.get_json("/v1/plugins")["generation"].as_u64().unwrap();
    let ok = reloads(&gw, "ok");
    // Rewriting a file with the same bytes is noticed but swaps nothing.
    let upper = gw.plugins_dir().join("upper.wasm");
    std::fs::write(&upper, std::fs::read(&upper).unwrap()).unwrap();
    gw.wait_for("the rewrite to be noticed", Duration::from_secs(10), |g| {
        reloads(g, "unchanged") >= 1
    });
    // Reading the files (every reload hashes them) is not a change: were it
    // taken for one, the gateway would reload every debounce period forever.
    std::thread::sleep(Duration::from_millis(1500)); // 15 debounce periods
    let log = gw.log();
    assert_eq!(
        gw.get_json("/v1/plugins")["generation"].as_u64().unwrap(),
        generation,
        "the chain was swapped without a change; log:\n{log}"
    );
    assert_eq!(
        reloads(&gw, "ok"),
        ok,
        "reloads without a change; log:\n{log}"
    );
    // One rewrite may reach the watcher as two bursts, never more.
    let unchanged = reloads(&gw, "unchanged");
    assert!(
        unchanged <= 2,
        "{unchanged} reloads after one rewrite; log:\n{log}"
    );
    assert_eq!(chain_names(&gw), ["scrub", "upper"]);
}

#[test]
fn a_kubernetes_style_symlink_swap_is_picked_up() {
    // A ConfigMap/Secret volume: visible names link through `..data`, which
    // is swapped atomically to a new timestamped folder on every update.
    let gw = Gateway::start(&[]);
    let dir = gw.plugins_dir();
    let v1 = dir.join("..2026_11_22_v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::copy(fixture("upper"), v1.join("shape.wasm")).unwrap();
    std::os::unix::fs::symlink("..2026_11_22_v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/shape.wasm", dir.join("shape.wasm")).unwrap();
    gw.wait_for("the linked plugin", Duration::from_secs(10), |g| {
        chain_names(g) == ["shape"]
    });
    let (_, a) = gw.post_json(
        "/v1/events",
        &json!([{"event_type": "t", "command": "run"}]),
    );
    assert_eq!(a["accepted"], 1, "{a}");
    assert_eq!(gw.lines("events")[0]["command"], "RUN");
    let sha_v1 = gw.plugin("shape").unwrap()["sha256"].clone();

    // The update: new folder, then `..data` replaced by a rename.
    let v2 = dir.join("..2026_11_22_v2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::copy(fixture("scrub-email"), v2.join("shape.wasm")).unwrap();
    std::os::unix::fs::symlink("..2026_11_22_v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    gw.wait_for("the swapped plugin", Duration::from_secs(10), |g| {
        g.plugin("shape").unwrap()["sha256"] != sha_v1
    });
    let (_, a) = gw.post_json(
        "/v1/events",
        &json!([{"event_type": "t", "command": "run", "user": "ada@example.com"}]),
    );
    assert_eq!(a["accepted"], 1, "{a}");
    let last = gw.lines("events").pop().unwrap();
    assert_eq!(last["command"], "run", "no longer upper-cased: {last}");
    assert_ne!(
        last["user"], "ada@example.com",
        "scrubbed by the new plugin: {last}"
    );
}

#[test]
fn rescans_find_a_replaced_folder_and_do_not_retry_what_failed() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("upper", "upper")],
        extra_config: "rescan_interval = \"200ms\"\n".into(),
        ..Default::default()
    });
    // A file that cannot load is tried once, not on every rescan. (Renamed
    // into place, so no rescan sees it half written.)
    let tmp = gw.plugins_dir().join(".broken.tmp");
    std::fs::write(&tmp, b"\0asm garbage").unwrap();
    std::fs::rename(&tmp, gw.plugins_dir().join("broken.wasm")).unwrap();
    gw.wait_for("the failure", Duration::from_secs(10), |g| {
        g.plugin("broken").is_some_and(|p| p["state"] == "failed")
    });
    std::thread::sleep(Duration::from_millis(1200)); // 6 rescans
    assert_eq!(reloads(&gw, "failed"), 1, "log:\n{}", gw.log());
    assert_eq!(gw.log().matches("plugin failed to load").count(), 1);

    // The whole folder replaced: the old one moved away, a new one made
    // with another plugin. The watch was on the old folder; a rescan finds
    // the new one and watches it.
    let dir = gw.plugins_dir();
    std::fs::rename(&dir, dir.with_extension("old")).unwrap();
    std::fs::create_dir(&dir).unwrap();
    install(&dir, "scrub-email", "scrub");
    gw.wait_for("the new folder's chain", Duration::from_secs(10), |g| {
        chain_names(g) == ["scrub"]
    });
    gw.wait_for_log("plugins folder was replaced; watching the new one");
    // And it keeps following changes there.
    install(&dir, "upper", "upper");
    gw.wait_for("the added plugin", Duration::from_secs(10), |g| {
        chain_names(g) == ["scrub", "upper"]
    });
}
