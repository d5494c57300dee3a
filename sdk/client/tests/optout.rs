//! Opt-out in a real process: no thread, no file, no socket. `init` is once
//! per process, so each case re-runs this test binary as a child that runs
//! only `probe`, with the case's environment.

use std::path::Path;
use std::process::Command;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// The child's side: set up, track, flush, and report.
#[test]
fn probe() {
    let Ok(home) = std::env::var("WRAITH_PROBE_HOME") else {
        return; // not a child run
    };
    let before = threads();
    let guard = wraith_sdk::init("probe", "1.0.0");
    wraith_sdk::track(wraith_sdk::Event::new("tool_invoked").command("x"));
    wraith_sdk::timed("y", || Ok::<(), std::fmt::Error>(())).unwrap();
    drop(guard);
    println!(
        "PROBE enabled={} threads+{} files={:?}",
        wraith_sdk::enabled(),
        threads() - before,
        files(Path::new(&home))
    );
}

fn run(case: &str, setup: impl FnOnce(&Path, &mut Command)) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "probe", "--nocapture", "--test-threads", "1"])
        .env("HOME", home.path())
        .env("WRAITH_PROBE_HOME", home.path())
        .env("WRAITH_MODE", "file")
        .env_remove("WRAITH_TELEMETRY")
        .env_remove("DO_NOT_TRACK")
        .env_remove("WRAITH_HOME")
        .env_remove("WRAITH_FILE");
    setup(home.path(), &mut c);
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{case}: {text}");
    let at = text
        .find("PROBE ")
        .unwrap_or_else(|| panic!("{case}: no report in {text}"));
    text[at..].lines().next().unwrap_or("").to_string()
}

#[test]
fn opted_out_starts_no_thread_and_writes_no_file() {
    for (k, v) in [
        ("WRAITH_TELEMETRY", "false"),
        ("WRAITH_TELEMETRY", "0"),
        ("DO_NOT_TRACK", "1"),
    ] {
        let r = run(k, |_, c| {
            c.env(k, v);
        });
        assert_eq!(r, "PROBE enabled=false threads+0 files=[]", "{k}={v}");
    }
    let r = run("config", |home, _| {
        std::fs::create_dir(home.join(".wraith")).unwrap();
        std::fs::write(home.join(".wraith/config.json"), r#"{"telemetry": false}"#).unwrap();
    });
    assert_eq!(
        r,
        "PROBE enabled=false threads+0 files=[\".wraith\", \".wraith/config.json\"]"
    );
    // The control: telemetry on (file mode), one thread and the files it writes.
    let r = run("on", |_, _| {});
    assert_eq!(
        r,
        "PROBE enabled=true threads+1 files=[\".wraith\", \".wraith/events.jsonl\", \".wraith/installation_id\"]"
    );
}
