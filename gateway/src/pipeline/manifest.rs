//! `plugins.toml`: optional order, failure policy and config of the plugins
//! in a folder.
//!
//! ```toml
//! # Plugins run in this order; files not listed run after, by file name.
//! order = ["schema-validate", "pii-scrub", "enrich", "route"]
//!
//! [plugins.pii-scrub]
//! # What happens to a batch when the plugin faults or is quarantined:
//! # "dead-letter" (default: fail closed) or "pass" (hand it on unchanged).
//! on_error = "dead-letter"
//! # false keeps the file in the folder but out of the chain.
//! enabled = true
//! # Given to the plugin's `init` as JSON.
//! [plugins.pii-scrub.config]
//! email = "mask"
//!
//! # A candidate beside the live plugin, on the same batches: compared,
//! # never applied (`/v1/plugins` shows where they disagree). Promote it by
//! # removing these two lines (and the old plugin).
//! [plugins.pii-scrub-next]
//! mode = "shadow"
//! shadows = "pii-scrub"
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The manifest's file name inside the plugins folder.
pub const MANIFEST: &str = "plugins.toml";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Manifest {
    /// Plugin names (file names without `.wasm`) in chain order.
    pub order: Vec<String>,
    /// Per-plugin settings, by name.
    pub plugins: BTreeMap<String, PluginEntry>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginEntry {
    pub enabled: bool,
    pub on_error: FailurePolicy,
    pub config: toml::Table,
    /// `live` (default) or `shadow`.
    pub mode: Mode,
    /// For a shadow: the live plugin it runs beside (and would replace).
    pub shadows: Option<String>,
}

impl Default for PluginEntry {
    fn default() -> Self {
        PluginEntry {
            enabled: true,
            on_error: FailurePolicy::DeadLetter,
            config: toml::Table::new(),
            mode: Mode::Live,
            shadows: None,
        }
    }
}

/// Whether a plugin is in the chain or runs beside another one.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// In the chain: its answers are applied.
    #[default]
    Live,
    /// Beside the plugin named by `shadows`, on the same batches: its
    /// answers are compared with that plugin's and never applied.
    Shadow,
}

/// What happens to a batch when its plugin cannot process it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Fail closed: the batch goes to the dead-letter queue.
    #[default]
    DeadLetter,
    /// Fail open: the batch continues unchanged (for harmless plugins such
    /// as enrichers; never for scrubbers).
    Pass,
}

impl std::fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailurePolicy::DeadLetter => "dead-letter",
            FailurePolicy::Pass => "pass",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid {path}: {message}")]
    Parse { path: String, message: String },
}

impl Manifest {
    /// Every destination a plugin's config routes to (a `route = "NAME"`
    /// action anywhere in its `config` table, as the route plugin writes
    /// them), with the plugin's name, so `gateway check --config` and start-up
    /// can refuse a destination no sink knows.
    pub fn routed_destinations(&self) -> Vec<(String, String)> {
        fn walk(v: &toml::Value, plugin: &str, out: &mut Vec<(String, String)>) {
            match v {
                toml::Value::Table(t) => {
                    for (k, v) in t {
                        if k == "route"
                            && let toml::Value::String(d) = v
                        {
                            out.push((plugin.to_string(), d.clone()));
                        }
                        walk(v, plugin, out);
                    }
                }
                toml::Value::Array(a) => a.iter().for_each(|v| walk(v, plugin, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for (name, entry) in &self.plugins {
            if entry.enabled {
                walk(&toml::Value::Table(entry.config.clone()), name, &mut out);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Read the manifest of a folder; a missing file is an empty manifest.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(source) => {
                return Err(ManifestError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let m: Manifest = toml::from_str(&text).map_err(|e| ManifestError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        m.check().map_err(|message| ManifestError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        Ok(m)
    }

    /// The rules TOML cannot say: a shadow names one live plugin.
    fn check(&self) -> Result<(), String> {
        for (name, e) in &self.plugins {
            match (e.mode, &e.shadows) {
                (Mode::Shadow, None) => {
                    return Err(format!(
                        "plugins.{name}: mode = \"shadow\" needs `shadows = \"<live plugin>\"`, the plugin it runs beside"
                    ));
                }
                (Mode::Live, Some(_)) => {
                    return Err(format!(
                        "plugins.{name}: `shadows` is for mode = \"shadow\" (add it, or remove `shadows`)"
                    ));
                }
                (Mode::Shadow, Some(live)) if live == name => {
                    return Err(format!("plugins.{name}: a plugin cannot shadow itself"));
                }
                (Mode::Shadow, Some(live)) if self.entry(live).mode == Mode::Shadow => {
                    return Err(format!(
                        "plugins.{name}: shadows `{live}`, which is itself a shadow; shadow a live plugin"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Settings of one plugin (defaults when the manifest does not name it).
    pub fn entry(&self, name: &str) -> PluginEntry {
        self.plugins.get(name).cloned().unwrap_or_default()
    }

    /// Sort plugin names into chain order.
    pub fn ordered(&self, mut names: Vec<String>) -> Vec<String> {
        names.sort();
        let mut out: Vec<String> = self
            .order
            .iter()
            .filter(|n| names.contains(n))
            .cloned()
            .collect();
        out.extend(names.into_iter().filter(|n| !self.order.contains(n)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_listed_first_then_by_name() {
        let m: Manifest = toml::from_str("order = [\"b\", \"missing\", \"c\"]").unwrap();
        let got = m.ordered(vec!["d".into(), "c".into(), "a".into(), "b".into()]);
        assert_eq!(got, ["b", "c", "a", "d"]);
    }

    #[test]
    fn parses_entries_and_refuses_typos() {
        let m: Manifest = toml::from_str(
            "[plugins.x]\non_error = \"pass\"\nconfig = { field = \"tool\", n = 3 }\n",
        )
        .unwrap();
        let e = m.entry("x");
        assert_eq!(e.on_error, FailurePolicy::Pass);
        assert_eq!(e.config["field"].as_str(), Some("tool"));
        assert!(m.entry("y").enabled);
        let err = toml::from_str::<Manifest>("[plugins.x]\non_eror = \"pass\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `on_eror`"), "{err}");
        let err = toml::from_str::<Manifest>("[plugins.x]\non_error = \"ignore\"\n").unwrap_err();
        assert!(err.to_string().contains("dead-letter"), "{err}");
    }
}
