//! The JavaScript plugin toolchain: componentize-js (SpiderMonkey inside),
//! jco, rolldown (bundles a plugin and the SDK into one module) and the WASI
//! shim componentize-js runs its splicer on, installed from npm at pinned
//! versions into `target/node-tools` on first use; and the build of
//! `examples/js-plugin` with it.

use crate::{step, target_dir, up_to_date};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The npm packages of the JavaScript plugin build, pinned in
/// `sdk/js-plugin/tools.json` (which `gateway plugin new --lang js` writes
/// into a project's devDependencies too). componentize-js imports
/// `@bytecodealliance/preview2-shim` without declaring it (a development
/// dependency of its own, ^0.17), so the release it was built against is
/// listed there.
fn node_tools_pinned(root: &Path) -> Result<Vec<(String, String)>> {
    let path = root.join("sdk/js-plugin/tools.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object", path.display()))?;
    map.into_iter()
        .map(|(name, v)| match v.as_str() {
            Some(v) => Ok((name, v.to_string())),
            None => bail!("{}: the version of {name} is not a string", path.display()),
        })
        .collect()
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Node.js and npm, installed from Debian when missing.
fn ensure_node() -> Result<()> {
    if !have("node") {
        crate::servers::apt_install("nodejs")?;
    }
    if !have("npm") {
        crate::servers::apt_install("npm")?;
    }
    if !have("node") || !have("npm") {
        bail!("Node.js and npm are needed for JavaScript plugins: install Node.js 20 or newer");
    }
    Ok(())
}

/// The folder whose `node_modules` holds the JavaScript plugin toolchain,
/// installed when missing or when the pinned versions changed.
pub fn node_tools(root: &Path) -> Result<PathBuf> {
    let dir = target_dir(root).join("node-tools");
    let pinned = node_tools_pinned(root)?;
    let deps: Vec<String> = pinned
        .iter()
        .map(|(n, v)| format!("    {n:?}: {v:?}"))
        .collect();
    let manifest = format!(
        "{{\n  \"private\": true,\n  \"description\": \"The JavaScript plugin toolchain, installed by cargo xtask\",\n  \"dependencies\": {{\n{}\n  }}\n}}\n",
        deps.join(",\n")
    );
    let stamp = dir.join("node_modules/.wraith-tools");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == manifest) {
        return Ok(dir);
    }
    ensure_node()?;
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), &manifest)?;
    step(&format!(
        "installing {} from npm into {}",
        pinned
            .iter()
            .map(|(n, v)| format!("{n}@{v}"))
            .collect::<Vec<_>>()
            .join(", "),
        dir.display()
    ));
    let started = std::time::Instant::now();
    let ok = Command::new("npm")
        .current_dir(&dir)
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .status()
        .context("running npm")?
        .success();
    if !ok {
        bail!(
            "`npm install` of the JavaScript plugin toolchain failed (in {})",
            dir.display()
        );
    }
    std::fs::write(&stamp, &manifest)?;
    step(&format!(
        "npm install took {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(dir)
}

/// Build `examples/js-plugin` into `target/fixtures/redact-js.wasm` with the
/// SDK's build script. Skipped when the component is newer than its sources,
/// the SDK and the contract.
pub fn build_js_plugin(root: &Path) -> Result<()> {
    let out = target_dir(root).join("fixtures/redact-js.wasm");
    if up_to_date(
        &out,
        &[
            root.join("examples/js-plugin/plugin.js"),
            root.join("sdk/js-plugin/src"),
            root.join("sdk/js-plugin/bin"),
            root.join("wit"),
        ],
    ) {
        return Ok(());
    }
    let tools = node_tools(root)?;
    step("building examples/js-plugin with componentize-js");
    std::fs::create_dir_all(out.parent().expect("has a parent"))?;
    let ok = Command::new("node")
        .current_dir(root)
        .env("WRAITH_NODE_TOOLS", &tools)
        .args([
            "sdk/js-plugin/bin/build.js",
            "examples/js-plugin/plugin.js",
            "-o",
        ])
        .arg(&out)
        .status()
        .context("running node")?
        .success();
    if !ok {
        bail!("building examples/js-plugin failed");
    }
    Ok(())
}

/// The variables that point the tests at the toolchain.
pub fn env(root: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    Ok(vec![("WRAITH_NODE_TOOLS", node_tools(root)?)])
}
