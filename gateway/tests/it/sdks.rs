//! The Python and JavaScript plugin SDKs: their own tests and the shared
//! vectors (`sdk/vectors/`) in plain CPython and Node, the examples' native
//! tests, and the JavaScript example built with componentize-js running
//! through a real gateway.

use crate::support::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run a command that must succeed; its output is shown when it does not.
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: cannot run {cmd:?} ({e}); `cargo xtask test` installs what the tests need")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn the_python_sdk_passes_its_tests_and_the_shared_vectors() {
    let sdk = repo().join("sdk/python-plugin");
    let out = run_ok(
        Command::new(python())
            .args(["-m", "unittest", "discover", "-v", "-s", "tests"])
            .current_dir(&sdk)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        "the Python SDK's tests",
    );
    assert!(out.contains("test_every_vector"), "{out}");
    let out = run_ok(
        Command::new(python())
            .args(["-m", "unittest", "-v"])
            .current_dir(repo().join("examples/python-plugin"))
            .env("PYTHONPATH", &sdk)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        "examples/python-plugin's tests",
    );
    assert!(out.contains("Ran 3 tests"), "{out}");
}

#[test]
fn the_javascript_sdk_passes_its_tests_and_the_shared_vectors() {
    let out = run_ok(
        Command::new("node")
            .args(["--test", "test/"])
            .current_dir(repo().join("sdk/js-plugin")),
        "the JavaScript SDK's tests (Node.js 20 or newer)",
    );
    assert!(out.contains("# fail 0"), "{out}");
    let vectors = out
        .lines()
        .filter(|l| l.starts_with("ok ") && l.contains(".json: "))
        .count();
    assert!(vectors > 10, "only {vectors} vectors ran:\n{out}");
    let out = run_ok(
        Command::new("node")
            .args(["--import", "../../sdk/js-plugin/register.js", "--test"])
            .current_dir(repo().join("examples/js-plugin")),
        "examples/js-plugin's tests",
    );
    assert!(out.contains("# pass 3"), "{out}");
}

#[test]
fn a_javascript_plugin_runs_through_the_same_contract() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("redact-js", "redact-js")],
        manifest: Some(
            "[plugins.redact-js.config]\nfield = \"context.hostname\"\nreject_types = [\"internal\"]\n"
                .into(),
        ),
        ..Default::default()
    });
    let (s, a) = gw.post_json(
        "/v1/events",
        &json!([
            {"event_type": "tool_invoked", "context": {"hostname": "ada-laptop.corp", "os": "linux"}, "message": "mail ada@example.com"},
            {"event_type": "internal"},
            {"event_type": "tool_invoked", "context": {"os": "linux"}, "n": 18446744073709551615u64},
        ]),
    );
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        (a["accepted"].as_u64(), a["dead_lettered"].as_u64()),
        (Some(2), Some(1)),
        "{a}"
    );
    let stored = gw.lines("events");
    assert_eq!(
        stored[0]["context"],
        json!({"hostname": "[redacted]", "os": "linux"})
    );
    assert_eq!(stored[0]["message"], "mail [email]");
    assert_eq!(stored[1]["context"], json!({"os": "linux"}));
    assert_eq!(stored[1]["n"], json!(18446744073709551615u64));
    let dlq = gw.lines("dlq");
    assert_eq!(
        dlq[0]["dlq"]["reason"],
        "event type internal is refused by redact-js"
    );
    gw.assert_metrics(&["wraith_plugin_counter_total{plugin=\"redact-js\",name=\"redacted\"} 2"]);
    gw.wait_for_log("redact-js ready: field context.hostname");
    // A typo in its config is refused by the plugin, with the field named.
    std::fs::write(
        gw.plugins_dir().join("plugins.toml"),
        "[plugins.redact-js.config]\nfeild = \"x\"\n",
    )
    .unwrap();
    gw.wait_for(
        "the refused config",
        std::time::Duration::from_secs(60),
        |g| {
            g.plugin("redact-js")
                .map(|p| !p["last_error"].is_null())
                .unwrap_or(false)
        },
    );
    let err = gw.plugin("redact-js").unwrap()["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with(
            "plugin `redact-js` refused its config: field `feild`: unknown field `feild`"
        ),
        "{err}"
    );
}
