//! The README's "Write a plugin" walk, for each language: `gateway plugin new`,
//! the project's own test, `gateway plugin build`, the component dropped into
//! a running gateway's plugins folder, an event sent over HTTP, the change seen
//! in what the gateway stored.

use crate::sdks::{repo, run_ok};
use crate::support::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// The toolchains `cargo xtask test` installed (a missing one is named with
/// how to get it).
fn tool_env(cmd: &mut Command) -> &mut Command {
    let venv_tool = target_dir().join("py-venv/bin/componentize-py");
    let node_tools = std::env::var_os("WRAITH_NODE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("node-tools"));
    assert!(
        venv_tool.is_file() && node_tools.join("node_modules").is_dir(),
        "componentize-py ({}) or the npm tools ({}) are missing: run `cargo xtask test`, which installs them",
        venv_tool.display(),
        node_tools.display()
    );
    cmd.env("WRAITH_COMPONENTIZE_PY", venv_tool)
        .env("WRAITH_NODE_TOOLS", node_tools)
        // A Rust project outside the workspace shares one build folder
        // across runs, so only the first run compiles its dependencies.
        .env("CARGO_TARGET_DIR", target_dir().join("starter-rust"))
}

fn walk(lang: &str, own_test: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("hello-{lang}");
    let out = run_ok(
        gateway_command()
            .args(["plugin", "new", &name, "--lang", lang, "--dir"])
            .arg(tmp.path()),
        "gateway plugin new",
    );
    let project = tmp.path().join(&name);
    assert!(out.contains(&project.display().to_string()), "{out}");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.lines().next())
        .unwrap();
    assert_eq!(first, "gateway plugin build", "{readme}");
    if lang == "rust" {
        // The versions this workspace is tested with.
        std::fs::copy(repo().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    }
    // The project's own test.
    run_ok(
        tool_env(&mut Command::new(own_test[0]))
            .args(&own_test[1..])
            .current_dir(&project)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        &format!("the {lang} starter's test"),
    );
    // The README's first command.
    run_ok(
        tool_env(&mut gateway_command())
            .args(["plugin", "build"])
            .current_dir(&project),
        "gateway plugin build",
    );
    let wasm = project.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "no {}", wasm.display());
    // Live: dropped into a running gateway's plugins folder.
    let gw = Gateway::start(&[]);
    install_file(&gw.plugins_dir(), &wasm, &name);
    gw.wait_for(
        &format!("{name} to be active"),
        Duration::from_secs(180),
        |g| g.plugin(&name).is_some_and(|p| p["state"] == "active"),
    );
    let (s, a) = gw.post_json(
        "/v1/events",
        &json!({"event_type": "login", "message": "mail ada@example.com now", "context": {"os": "linux"}}),
    );
    assert_eq!(s, 200, "{a}");
    let stored = gw.lines("events");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["message"], "mail [email] now");
    assert_eq!(stored[0]["context"], json!({"os": "linux"}));
    gw.assert_metrics(&[&format!(
        "wraith_plugin_counter_total{{plugin=\"{name}\",name=\"emails_masked\"}} 1"
    )]);
}

fn install_file(dir: &Path, wasm: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.wasm.tmp"));
    std::fs::copy(wasm, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.wasm"))).unwrap();
}

#[test]
fn a_rust_plugin_from_nothing_to_live() {
    walk(
        "rust",
        &[
            &std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            "test",
        ],
    );
}

#[test]
fn a_python_plugin_from_nothing_to_live() {
    walk("python", &["python3", "-m", "unittest", "-v"]);
}

#[test]
fn a_javascript_plugin_from_nothing_to_live() {
    walk("js", &["npm", "test"]);
}

#[test]
fn a_project_that_is_not_one_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = gateway_command()
        .args(["plugin", "build", "--dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no plugin project"), "{err}");
    let out = gateway_command()
        .args(["plugin", "new", "x", "--lang", "go"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rust, python or js"));
}
