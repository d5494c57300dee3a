//! The plugins folder: loading it into a [`Chain`], reloading it when files
//! change, and reporting every plugin's state for `/v1/plugins`.

use super::manifest::{FailurePolicy, MANIFEST, Manifest, Mode, PluginEntry};
use super::shadow::{Shadow, ShadowStats, ShadowStatus};
use super::{Chain, Link};
use crate::host::{Host, Limits, PluginRuntime};
use crate::telemetry::{ReloadLabels, ReloadOutcome};
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `/v1/plugins` shows about one plugin file.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub name: String,
    pub file: String,
    /// `active`, `quarantined`, `failed` (never loaded; not in the chain) or
    /// `disabled` (by the manifest).
    pub state: &'static str,
    /// SHA-256 of the file that is running (or that failed).
    pub sha256: Option<String>,
    /// The plugin contract the running component targets
    /// (`wraith:plugin@0.1.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    pub loaded_at: Option<String>,
    pub on_error: FailurePolicy,
    /// `live` (in the chain) or `shadow` (beside `shadows`).
    pub mode: Mode,
    /// For a shadow: the live plugin it runs beside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadows: Option<String>,
    /// For a shadow: what the comparison with the live plugin found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowStatus>,
    pub position: Option<usize>,
    pub events_in: u64,
    pub kept: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub faulted: u64,
    pub calls: u64,
    /// Time spent in calls, in seconds (over `calls`: the mean latency).
    pub call_seconds: f64,
    pub faults: u64,
    /// Instances alive now, and the most alive at once (at most
    /// `plugins.workers`).
    pub instances: u64,
    pub peak_instances: u64,
    /// The newest error: a fault of the running plugin, or why the newest
    /// version of the file did not load (the previous version keeps running).
    pub last_error: Option<String>,
}

/// The outcome of one (re)load.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReloadReport {
    pub generation: u64,
    pub loaded: Vec<String>,
    pub kept: Vec<String>,
    pub removed: Vec<String>,
    /// `(file, error)` for every file that failed.
    pub failed: Vec<(String, String)>,
}

struct Loaded {
    runtime: Arc<PluginRuntime>,
    loaded_at: String,
    /// What the comparison with its live plugin found, when it is a shadow
    /// (kept while the same file and config run).
    shadow_stats: Arc<ShadowStats>,
}

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Startup, the watcher, or a caller: report every outcome.
    Change,
    /// The periodic rescan: say nothing when nothing changed.
    Rescan,
}

/// Why the newest version of a file did not load, and what was tried: the
/// same bytes with the same config are not tried again.
struct LoadError {
    message: String,
    sha256: Option<String>,
    config_json: String,
}

#[derive(Default)]
struct State {
    loaded: HashMap<String, Loaded>,
    /// Load errors by plugin name, for files whose newest version failed.
    errors: HashMap<String, LoadError>,
    /// Why the folder could not be listed at the last reload.
    folder_error: Option<String>,
    disabled: Vec<String>,
    manifest_error: Option<String>,
    generation: u64,
    /// Shadows whose live plugin is not in the chain: name, live name, why.
    unattached: Vec<(String, String, String)>,
}

/// Put a loaded plugin in the chain, or beside its live plugin when it is
/// a shadow.
fn place(
    links: &mut Vec<Link>,
    shadows: &mut Vec<(String, Shadow)>,
    entry: &PluginEntry,
    loaded: &Loaded,
) {
    match (entry.mode, &entry.shadows) {
        (Mode::Shadow, Some(live)) => shadows.push((
            live.clone(),
            Shadow {
                runtime: loaded.runtime.clone(),
                stats: loaded.shadow_stats.clone(),
            },
        )),
        _ => links.push(Link {
            runtime: loaded.runtime.clone(),
            on_error: entry.on_error,
            shadows: Vec::new(),
        }),
    }
}

/// The plugins folder and the chain built from it.
pub struct Registry {
    dir: PathBuf,
    host: Arc<Host>,
    /// The limits new instances get; replaced by a config reload.
    limits: Mutex<Limits>,
    max_batch: usize,
    chain: ArcSwap<Chain>,
    state: Mutex<State>,
    /// Serialises reloads.
    reload_lock: Mutex<()>,
}

impl Registry {
    pub fn new(dir: PathBuf, host: Arc<Host>, limits: Limits, max_batch: usize) -> Arc<Registry> {
        let empty = Chain::new(Vec::new(), 0, max_batch);
        Arc::new(Registry {
            dir,
            host,
            limits: Mutex::new(limits),
            max_batch,
            chain: ArcSwap::from_pointee(empty),
            state: Mutex::new(State::default()),
            reload_lock: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Give every plugin new limits: the next reload loads each again (from
    /// the compile cache) under them, and tries failed files again.
    pub fn set_limits(&self, limits: Limits) {
        *self.limits.lock().expect("limits") = limits;
        self.state.lock().expect("state").errors.clear();
    }

    /// The running chain. Hold on to the returned `Arc` for a whole batch.
    pub fn chain(&self) -> Arc<Chain> {
        self.chain.load_full()
    }

    /// Read the folder and swap in a new chain. Unchanged files keep their
    /// loaded instances; a file that fails to load keeps its previous version
    /// in the chain (if any) and is reported. Blocking: compiles plugins.
    pub fn reload(&self) -> ReloadReport {
        self.reload_as(Trigger::Change)
    }

    fn reload_as(&self, trigger: Trigger) -> ReloadReport {
        let _serial = self.reload_lock.lock().expect("reload lock");
        let mut report = ReloadReport::default();
        let quiet = trigger == Trigger::Rescan;
        let manifest = match Manifest::load(&self.dir) {
            Ok(m) => {
                self.state.lock().expect("state").manifest_error = None;
                m
            }
            Err(e) => {
                // Without a readable manifest the order, policies and configs
                // are unknown: keep the running chain as it is.
                let msg = e.to_string();
                let repeated =
                    self.state.lock().expect("state").manifest_error.as_ref() == Some(&msg);
                if !(quiet && repeated) {
                    tracing::error!(error = %msg, "plugin manifest is invalid; keeping the running chain");
                    self.count_reload(false);
                }
                self.state.lock().expect("state").manifest_error = Some(msg.clone());
                report.failed.push((MANIFEST.to_string(), msg));
                report.generation = self.chain().generation;
                return report;
            }
        };
        let files = match wasm_files(&self.dir) {
            Ok(f) => {
                self.state.lock().expect("state").folder_error = None;
                f
            }
            Err(e) => {
                let msg = format!("cannot list {}: {e}", self.dir.display());
                let repeated =
                    self.state.lock().expect("state").folder_error.as_ref() == Some(&msg);
                if !(quiet && repeated) {
                    tracing::error!(error = %msg, "keeping the running chain");
                    self.count_reload(false);
                }
                self.state.lock().expect("state").folder_error = Some(msg.clone());
                report.failed.push((self.dir.display().to_string(), msg));
                report.generation = self.chain().generation;
                return report;
            }
        };
        let names = manifest.ordered(files.keys().cloned().collect());
        let limits = self.limits.lock().expect("limits").clone();
        let mut links = Vec::new();
        let mut shadows: Vec<(String, Shadow)> = Vec::new();
        let mut disabled = Vec::new();
        let mut st = self.state.lock().expect("state");
        let mut next_loaded: HashMap<String, Loaded> = HashMap::new();
        for name in names {
            let entry = manifest.entry(&name);
            let path = &files[&name];
            if !entry.enabled {
                disabled.push(name.clone());
                st.errors.remove(&name);
                continue;
            }
            let config_json =
                serde_json::to_string(&entry.config).expect("toml tables serialize to JSON");
            let previous = st.loaded.remove(&name);
            let sha = std::fs::read(path).ok().map(|b| {
                use sha2::Digest;
                sha2::Sha256::digest(&b)
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
            });
            if let Some(prev) = &previous
                && Some(&prev.runtime.sha256) == sha.as_ref()
                && prev.runtime.config_json == config_json
                && prev.runtime.limits == limits
            {
                report.kept.push(name.clone());
                place(&mut links, &mut shadows, &entry, prev);
                next_loaded.insert(name.clone(), previous.expect("checked"));
                continue;
            }
            if let Some(failed) = st.errors.get(&name)
                && failed.sha256 == sha
                && failed.config_json == config_json
            {
                // Already tried and refused; loading is deterministic.
                if let Some(prev) = previous {
                    place(&mut links, &mut shadows, &entry, &prev);
                    next_loaded.insert(name.clone(), prev);
                }
                continue;
            }
            // Compiling can take a while; do not hold the status lock.
            drop(st);
            let result = self
                .host
                .load(&name, path, config_json.clone(), limits.clone());
            st = self.state.lock().expect("state");
            match result {
                Ok(runtime) => {
                    tracing::info!(plugin = %name, file = %path.display(), sha256 = %runtime.sha256, from_cache = runtime.from_cache, "plugin loaded");
                    if let Some(prev) = previous {
                        prev.runtime.retire();
                    }
                    st.errors.remove(&name);
                    report.loaded.push(name.clone());
                    let shadow_stats = match (entry.mode, &entry.shadows) {
                        (Mode::Shadow, Some(live)) => {
                            Arc::new(ShadowStats::registered(self.host.metrics(), &name, live))
                        }
                        _ => Arc::default(),
                    };
                    let loaded = Loaded {
                        runtime,
                        loaded_at: now_rfc3339(),
                        shadow_stats,
                    };
                    place(&mut links, &mut shadows, &entry, &loaded);
                    next_loaded.insert(name.clone(), loaded);
                }
                Err(e) => {
                    let msg = e.to_string();
                    match &previous {
                        Some(_) => {
                            tracing::error!(plugin = %name, error = %msg, "new version of plugin failed to load; the previous version keeps running")
                        }
                        None => {
                            tracing::error!(plugin = %name, error = %msg, "plugin failed to load; it is not in the chain")
                        }
                    }
                    st.errors.insert(
                        name.clone(),
                        LoadError {
                            message: msg.clone(),
                            sha256: sha,
                            config_json,
                        },
                    );
                    report.failed.push((path.display().to_string(), msg));
                    if let Some(prev) = previous {
                        place(&mut links, &mut shadows, &entry, &prev);
                        next_loaded.insert(name.clone(), prev);
                    }
                }
            }
        }
        // Each shadow joins the link of the live plugin it shadows.
        let mut unattached = Vec::new();
        for (target, shadow) in shadows {
            match links.iter_mut().find(|l| l.runtime.name == target) {
                Some(link) => link.shadows.push(shadow),
                None => {
                    tracing::warn!(shadow = %shadow.runtime.name, live = %target, "shadow plugin has no live plugin to run beside");
                    unattached.push((
                        shadow.runtime.name.clone(),
                        target.clone(),
                        format!(
                            "shadows `{target}`, which is not in the chain: it runs on no batch"
                        ),
                    ));
                }
            }
        }
        st.unattached = unattached;
        for (name, gone) in st.loaded.drain() {
            tracing::info!(plugin = %name, "plugin removed from the chain");
            gone.runtime.retire();
            report.removed.push(name);
        }
        st.errors.retain(|name, _| files.contains_key(name));
        st.loaded = next_loaded;
        let current = self.chain();
        let same_chain = current.links.len() == links.len()
            && current.links.iter().zip(&links).all(|(a, b)| {
                Arc::ptr_eq(&a.runtime, &b.runtime)
                    && a.on_error == b.on_error
                    && a.shadows.len() == b.shadows.len()
                    && a.shadows
                        .iter()
                        .zip(&b.shadows)
                        .all(|(x, y)| Arc::ptr_eq(&x.runtime, &y.runtime))
            });
        if current.generation > 0
            && same_chain
            && report.failed.is_empty()
            && st.disabled == disabled
        {
            // A file was touched or rewritten with the same bytes: the
            // running chain already is what the folder says.
            tracing::debug!(generation = current.generation, "plugins folder unchanged");
            report.generation = current.generation;
            drop(st);
            if !quiet {
                self.count_reload_outcome(ReloadOutcome::unchanged);
            }
            return report;
        }
        st.disabled = disabled;
        st.generation += 1;
        report.generation = st.generation;
        self.host.metrics().chain_plugins.set(links.len() as i64);
        let order: Vec<&str> = links.iter().map(|l| l.runtime.name.as_str()).collect();
        tracing::info!(generation = st.generation, chain = ?order, "plugin chain is live");
        self.chain
            .store(Arc::new(Chain::new(links, st.generation, self.max_batch)));
        drop(st);
        self.count_reload(report.failed.is_empty());
        report
    }

    fn count_reload(&self, ok: bool) {
        self.count_reload_outcome(if ok {
            ReloadOutcome::ok
        } else {
            ReloadOutcome::failed
        });
    }

    fn count_reload_outcome(&self, outcome: ReloadOutcome) {
        self.host
            .metrics()
            .reloads
            .get_or_create(&ReloadLabels { outcome })
            .inc();
    }

    /// Every plugin file and its state, in chain order, then failed and
    /// disabled files.
    pub fn status(&self) -> (u64, Vec<PluginStatus>, Option<String>) {
        let chain = self.chain();
        let st = self.state.lock().expect("state");
        let mut out = Vec::new();
        for (pos, link) in chain.links.iter().enumerate() {
            let r = &link.runtime;
            let s = &r.stats;
            let loaded_at = st.loaded.get(&r.name).map(|l| l.loaded_at.clone());
            let load_error = st.errors.get(&r.name).map(|e| e.message.clone());
            let fault = s.last_error.lock().expect("stats").clone();
            out.push(PluginStatus {
                name: r.name.clone(),
                file: r.path.display().to_string(),
                state: if r.is_quarantined() {
                    "quarantined"
                } else {
                    "active"
                },
                sha256: Some(r.sha256.clone()),
                contract: Some(r.contract.clone()),
                loaded_at,
                on_error: link.on_error,
                mode: Mode::Live,
                shadows: None,
                shadow: None,
                position: Some(pos),
                events_in: s.events_in.load(Ordering::Relaxed),
                kept: s.kept.load(Ordering::Relaxed),
                dropped: s.dropped.load(Ordering::Relaxed),
                rejected: s.rejected.load(Ordering::Relaxed),
                faulted: s.faulted.load(Ordering::Relaxed),
                calls: s.calls.load(Ordering::Relaxed),
                call_seconds: s.busy_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                faults: s.faults.load(Ordering::Relaxed),
                instances: s.instances.load(Ordering::Relaxed),
                peak_instances: s.peak_instances.load(Ordering::Relaxed),
                last_error: load_error.or(fault),
            });
        }
        // Shadows: beside their live plugin, then those whose live plugin
        // is not in the chain.
        let attached = chain.links.iter().flat_map(|l| {
            l.shadows
                .iter()
                .map(move |sh| (sh, l.runtime.name.as_str(), None))
        });
        let unattached: Vec<(Shadow, &str, Option<String>)> = st
            .unattached
            .iter()
            .filter_map(|(name, live, error)| {
                let l = st.loaded.get(name)?;
                Some((
                    Shadow {
                        runtime: l.runtime.clone(),
                        stats: l.shadow_stats.clone(),
                    },
                    live.as_str(),
                    Some(error.clone()),
                ))
            })
            .collect();
        let shadow_entries: Vec<(Shadow, String, Option<String>)> = attached
            .map(|(sh, live, e)| (sh.clone(), live.to_string(), e))
            .chain(
                unattached
                    .into_iter()
                    .map(|(sh, live, e)| (sh, live.to_string(), e)),
            )
            .collect();
        for (sh, live, error) in shadow_entries {
            let r = &sh.runtime;
            let s = &r.stats;
            let mut status = sh.status(&live);
            status.error = error.clone();
            out.push(PluginStatus {
                name: r.name.clone(),
                file: r.path.display().to_string(),
                state: "shadow",
                sha256: Some(r.sha256.clone()),
                contract: Some(r.contract.clone()),
                loaded_at: st.loaded.get(&r.name).map(|l| l.loaded_at.clone()),
                on_error: FailurePolicy::default(),
                mode: Mode::Shadow,
                shadows: Some(live),
                position: None,
                events_in: status.events,
                kept: 0,
                dropped: 0,
                rejected: 0,
                faulted: 0,
                calls: s.calls.load(Ordering::Relaxed),
                call_seconds: s.busy_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                faults: status.faults,
                instances: s.instances.load(Ordering::Relaxed),
                peak_instances: s.peak_instances.load(Ordering::Relaxed),
                last_error: error.or_else(|| status.last_fault.clone()),
                shadow: Some(status),
            });
        }
        let mut failed: Vec<_> = st
            .errors
            .iter()
            .filter(|(name, _)| !chain.links.iter().any(|l| &l.runtime.name == *name))
            .collect();
        failed.sort_by_key(|(n, _)| n.as_str());
        // A file that is not in the chain: nothing has run through it.
        let not_running = |name: &str, state, sha256, last_error| PluginStatus {
            name: name.to_string(),
            file: self.dir.join(format!("{name}.wasm")).display().to_string(),
            state,
            sha256,
            contract: None,
            loaded_at: None,
            on_error: FailurePolicy::default(),
            mode: Mode::Live,
            shadows: None,
            shadow: None,
            position: None,
            events_in: 0,
            kept: 0,
            dropped: 0,
            rejected: 0,
            faulted: 0,
            calls: 0,
            call_seconds: 0.0,
            faults: 0,
            instances: 0,
            peak_instances: 0,
            last_error,
        };
        for (name, error) in failed {
            out.push(not_running(
                name,
                "failed",
                error.sha256.clone(),
                Some(error.message.clone()),
            ));
        }
        for name in &st.disabled {
            out.push(not_running(name, "disabled", None, None));
        }
        (chain.generation, out, st.manifest_error.clone())
    }

    /// Shadows whose live plugin is not in the chain, and why.
    pub fn unattached_shadows(&self) -> Vec<(String, String)> {
        let st = self.state.lock().expect("state");
        st.unattached
            .iter()
            .map(|(name, _, error)| (name.clone(), error.clone()))
            .collect()
    }

    /// Watch the folder and reload after changes settle for `debounce`; also
    /// look every `rescan` (unless zero) for changes the watcher cannot see:
    /// network file systems, or the folder deleted and made again (which is
    /// then watched afresh). Runs until the runtime stops.
    pub fn watch(self: &Arc<Self>, debounce: Duration, rescan: Duration) -> notify::Result<()> {
        use notify::{RecursiveMode, Watcher};
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                // Reading a file (as every reload does) is not a change.
                if let Ok(ev) = res
                    && !matches!(ev.kind, notify::EventKind::Access(_))
                    && ev.paths.iter().any(|p| relevant(p))
                {
                    tracing::debug!(kind = ?ev.kind, paths = ?ev.paths, "plugins folder changed");
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
        let mut watched = folder_identity(&self.dir);
        let me = self.clone();
        tokio::spawn(async move {
            let mut ticker = (!rescan.is_zero()).then(|| {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + rescan, rescan);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                let trigger = tokio::select! {
                    got = rx.recv() => match got {
                        Some(()) => Trigger::Change,
                        None => break,
                    },
                    () = next_tick(&mut ticker) => Trigger::Rescan,
                };
                if trigger == Trigger::Change {
                    // Wait until the folder has been quiet for `debounce`.
                    while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
                } else {
                    let now = folder_identity(&me.dir);
                    if now.is_some() && now != watched {
                        let _ = watcher.unwatch(&me.dir);
                        match watcher.watch(&me.dir, RecursiveMode::NonRecursive) {
                            Ok(()) => {
                                tracing::info!(dir = %me.dir.display(), "plugins folder was replaced; watching the new one");
                                watched = now;
                            }
                            Err(e) => {
                                tracing::warn!(dir = %me.dir.display(), error = %e, "cannot watch the plugins folder; rescanning only")
                            }
                        }
                    }
                }
                let me2 = me.clone();
                match tokio::task::spawn_blocking(move || me2.reload_as(trigger)).await {
                    Ok(report) => tracing::debug!(?report, "reload finished"),
                    Err(e) => tracing::error!(error = %e, "reload task failed"),
                }
            }
        });
        Ok(())
    }
}

/// The next rescan, or never.
async fn next_tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Which folder is at `dir` now (device and inode), to notice a replacement.
fn folder_identity(dir: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Whether a changed path can affect the chain: a `.wasm` file or the
/// manifest (hidden temp files being written are not), or a `..name` entry:
/// Kubernetes updates a mounted ConfigMap or Secret by swapping a `..data`
/// symlink that the visible files point through.
fn relevant(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.starts_with("..")
        || (!name.starts_with('.') && (name.ends_with(".wasm") || name == MANIFEST))
}

/// `.wasm` files of a folder by plugin name (file stem). Hidden files are
/// skipped, so `.name.wasm.tmp` can be written and renamed into place.
fn wasm_files(dir: &Path) -> std::io::Result<HashMap<String, PathBuf>> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        if let Some(stem) = name.strip_suffix(".wasm") {
            out.insert(stem.to_string(), path.clone());
        }
    }
    Ok(out)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
