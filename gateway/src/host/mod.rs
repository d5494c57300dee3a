//! The wasmtime host: compiling plugin components (with an on-disk cache),
//! instantiating them cheaply from an `InstancePre`, and calling them under a
//! deadline and a memory cap.
//!
//! This is the only module that knows the WIT-generated types; the rest of the
//! gateway sees [`PluginRuntime::process`] taking and returning plain Rust values.

mod state;

use crate::telemetry::{
    FaultLabels, FaultReason, Metrics, PluginLabel, PluginMetrics, RecycleLabels, RecycleReason,
};
use sha2::{Digest, Sha256};
use state::HostState;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

pub use wraith_event::flat::FlatBatch;

wasmtime::component::bindgen!({
    world: "wraith-plugin",
    path: "../wit",
});

use wraith::plugin::types;

/// A batch encoded once and handed, unchanged, to as many plugins as need it.
pub struct EncodedBatch(types::Batch);

impl From<FlatBatch> for EncodedBatch {
    fn from(b: FlatBatch) -> Self {
        EncodedBatch(types::Batch {
            data: b.data,
            leaves: b.leaves,
            events: b.events,
        })
    }
}

impl From<EncodedBatch> for FlatBatch {
    fn from(b: EncodedBatch) -> Self {
        FlatBatch {
            data: b.0.data,
            leaves: b.0.leaves,
            events: b.0.events,
        }
    }
}

impl EncodedBatch {
    /// The layout's three buffers: bytes, leaves, events.
    pub fn parts(&self) -> (&[u8], &[u32], &[u32]) {
        (&self.0.data, &self.0.leaves, &self.0.events)
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.0.events.len() / wraith_event::flat::EVENT_WORDS
    }

    pub fn is_empty(&self) -> bool {
        self.0.events.is_empty()
    }
}

/// How often the epoch ticks; call deadlines are rounded up to this.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid WebAssembly component: {message}")]
    Compile { path: PathBuf, message: String },
    #[error(
        "{path} does not implement a plugin contract this gateway hosts ({message}); this gateway hosts {CONTRACTS}: rebuild it against this gateway's wit/ (wraith-plugin SDK 0.1)"
    )]
    Contract { path: PathBuf, message: String },
    #[error("plugin `{plugin}` refused its config: {}", if field.is_empty() { message.clone() } else { format!("field `{field}`: {message}") })]
    Config {
        plugin: String,
        field: String,
        message: String,
    },
    #[error("plugin `{plugin}` failed during init: {message}")]
    InitFault { plugin: String, message: String },
}

/// The plugin contract versions this gateway hosts (the WIT package of
/// `wit/`). A future `wraith:plugin@0.2.0` is hosted beside 0.1.0 by a
/// second `bindgen!` world and linker; see ARCHITECTURE.md.
pub const CONTRACTS: &str = "wraith:plugin@0.1.0";

/// Limits applied to every plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub call_timeout: Duration,
    pub memory_limit: usize,
    pub memory_high_water: usize,
    pub max_calls_per_instance: u64,
    pub quarantine_after: u32,
}

impl Limits {
    pub fn from_config(c: &crate::config::PluginsConfig) -> Self {
        Limits {
            call_timeout: c.call_timeout,
            memory_limit: c.memory_limit.as_u64() as usize,
            memory_high_water: c.memory_high_water.as_u64() as usize,
            max_calls_per_instance: c.max_calls_per_instance,
            quarantine_after: c.quarantine_after,
        }
    }
}

/// The shared wasmtime engine, its linker, the epoch ticker and the
/// compiled-artifact cache.
pub struct Host {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    metrics: Arc<Metrics>,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// `WRAITH_WASM_PROFILER=perfmap` writes a perf map of the compiled plugin
/// code, so `perf record` of a running gateway shows the functions inside
/// each plugin. For profiling only.
pub const PROFILER_ENV: &str = "WRAITH_WASM_PROFILER";

impl Host {
    /// Build the engine. `cache_dir` keeps compiled components across restarts.
    pub fn new(cache_dir: Option<PathBuf>, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Host>> {
        let mut cfg = wasmtime::Config::new();
        cfg.wasm_component_model(true);
        cfg.epoch_interruption(true);
        if std::env::var_os(PROFILER_ENV).is_some_and(|v| v == "perfmap") {
            // `perf report` then names the plugins' functions
            // (/tmp/perf-PID.map).
            cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&cfg)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        WraithPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        if let Some(dir) = &cache_dir {
            let _ = std::fs::create_dir_all(dir);
        }
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let stop = stop_ticker.clone();
        std::thread::Builder::new()
            .name("wraith-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Arc::new(Host {
            engine,
            linker,
            cache_dir,
            metrics,
            stop_ticker,
        }))
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Compile (or load from the cache) a component from its bytes.
    fn component(
        &self,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<(Component, bool), LoadError> {
        let cached = self.cache_dir.as_ref().map(|d| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.engine.precompile_compatibility_hash().hash(&mut h);
            d.join(format!("{sha256}-{:016x}.cwasm", h.finish()))
        });
        if let Some(c) = &cached
            && c.is_file()
        {
            // SAFETY: the file was written by `Component::serialize` of this
            // same engine configuration (the name carries its compatibility
            // hash) into a folder only the gateway writes; wasmtime still
            // checks the header and version before using it.
            match unsafe { Component::deserialize_file(&self.engine, c) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(cache = %c.display(), error = %e, "ignoring unusable compiled-plugin cache entry")
                }
            }
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| LoadError::Compile {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        if let Some(c) = &cached
            && let Ok(bytes) = component.serialize()
        {
            static SEQ: AtomicU64 = AtomicU64::new(0);
            let tmp = c.with_extension(format!(
                "{}.{}.tmp",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            if std::fs::write(&tmp, bytes)
                .and_then(|_| std::fs::rename(&tmp, c))
                .is_err()
            {
                tracing::warn!(cache = %c.display(), "could not write compiled-plugin cache entry");
            }
        }
        Ok((component, false))
    }

    /// Load a plugin file: compile, link, build one instance and run `init`
    /// with `config_json`. Runs on the calling thread; call it off the
    /// request path.
    pub fn load(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
        config_json: String,
        limits: Limits,
    ) -> Result<Arc<PluginRuntime>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let started = Instant::now();
        let (component, from_cache) = self.component(path, &bytes, &sha256)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(WraithPluginPre::new)
            .map_err(|e| LoadError::Contract {
                path: path.to_path_buf(),
                message: contract_mismatch(&component, &self.engine, &e),
            })?;
        let contract = contracts_of(&component, &self.engine)
            .into_iter()
            .next()
            .unwrap_or_default();
        let runtime = Arc::new(PluginRuntime {
            name: name.to_string(),
            path: path.to_path_buf(),
            sha256,
            from_cache,
            contract,
            config_json,
            limits,
            pre,
            pool: Mutex::new(Vec::new()),
            host: self.clone(),
            stats: PluginStats::default(),
            metrics: self.metrics.for_plugin(name),
            counter_names: Arc::new(Mutex::new(Default::default())),
        });
        let first = runtime.instantiate().map_err(|e| match e {
            InstantiateError::Config { field, message } => LoadError::Config {
                plugin: name.to_string(),
                field,
                message,
            },
            InstantiateError::Fault(message) => LoadError::InitFault {
                plugin: name.to_string(),
                message,
            },
        })?;
        runtime.pool.lock().expect("pool lock").push(first);
        tracing::debug!(
            plugin = name,
            ms = started.elapsed().as_millis() as u64,
            "plugin compiled and initialised"
        );
        Ok(runtime)
    }
}

/// The `wraith:plugin` package versions a component exports interfaces of
/// (`wraith:plugin/plugin@0.1.0` → `wraith:plugin@0.1.0`).
fn contracts_of(component: &Component, engine: &Engine) -> Vec<String> {
    let mut out: Vec<String> = component
        .component_type()
        .exports(engine)
        .filter_map(|(n, _)| {
            let rest = n.strip_prefix("wraith:plugin/")?;
            let version = rest
                .split_once('@')
                .map(|(_, v)| v)
                .unwrap_or("(unversioned)");
            Some(format!("wraith:plugin@{version}"))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn contract_mismatch(component: &Component, engine: &Engine, e: &wasmtime::Error) -> String {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect();
    let targets = contracts_of(component, engine);
    if targets.is_empty() {
        return format!(
            "it exports no wraith:plugin interface (it exports: {})",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        );
    }
    let foreign: Vec<&String> = targets.iter().filter(|t| t.as_str() != CONTRACTS).collect();
    if !foreign.is_empty() {
        return format!(
            "it targets {} (it exports: {})",
            foreign
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            exports.join(", ")
        );
    }
    format!(
        "it exports {}, but not as the contract defines it: {e:#}",
        exports.join(", ")
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Counters about one loaded plugin, shown in `/v1/plugins`.
#[derive(Default, Debug)]
pub struct PluginStats {
    pub events_in: AtomicU64,
    pub kept: AtomicU64,
    pub dropped: AtomicU64,
    pub rejected: AtomicU64,
    pub faulted: AtomicU64,
    pub calls: AtomicU64,
    /// Time spent in `process` calls, in nanoseconds.
    pub busy_nanos: AtomicU64,
    pub faults: AtomicU64,
    pub consecutive_faults: AtomicU32,
    pub quarantined: AtomicBool,
    pub last_error: Mutex<Option<String>>,
    /// Instances alive now (pooled or in a call).
    pub instances: Arc<AtomicU64>,
    /// The most instances alive at once: bounded by `plugins.workers`.
    pub peak_instances: AtomicU64,
}

/// A plugin call that failed; the batch must not continue unprocessed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Fault {
    pub reason: FaultReason,
    pub message: String,
}

enum InstantiateError {
    Config { field: String, message: String },
    Fault(String),
}

struct Instance {
    store: Store<HostState>,
    bindings: WraithPlugin,
    calls: u64,
    _alive: Alive,
}

/// Counts an instance in [`PluginStats::instances`] while it lives.
struct Alive(Arc<AtomicU64>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a plugin answered for one batch, in plain types.
#[derive(Debug, Default)]
pub struct PluginAnswer {
    pub outcomes: Vec<(u32, Verdict)>,
    pub edits: Vec<u32>,
    pub edit_data: Vec<u8>,
}

/// A plugin's verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Drop(String),
    Reject(String),
    Route(String),
}

/// A loaded plugin: its compiled form, a pool of ready instances and its stats.
pub struct PluginRuntime {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    /// Whether the compiled form came from the on-disk cache.
    pub from_cache: bool,
    /// The contract the component targets (`wraith:plugin@0.1.0`).
    pub contract: String,
    pub config_json: String,
    pub limits: Limits,
    pre: WraithPluginPre<HostState>,
    pool: Mutex<Vec<Instance>>,
    host: Arc<Host>,
    pub stats: PluginStats,
    /// This plugin's metric handles.
    pub metrics: PluginMetrics,
    counter_names: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl PluginRuntime {
    fn instantiate(&self) -> Result<Instance, InstantiateError> {
        let state = HostState::new(
            self.name.clone(),
            self.limits.memory_limit,
            self.host.metrics.clone(),
            self.counter_names.clone(),
        );
        let mut store = Store::new(&self.host.engine, state);
        store.limiter(|s| s);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| InstantiateError::Fault(describe_trap(&store, &e, &self.limits)))?;
        store.set_epoch_deadline(self.deadline_ticks());
        match bindings
            .wraith_plugin_plugin()
            .call_init(&mut store, &self.config_json)
        {
            Ok(Ok(())) => {
                let alive = self.stats.instances.fetch_add(1, Ordering::Relaxed) + 1;
                self.stats
                    .peak_instances
                    .fetch_max(alive, Ordering::Relaxed);
                Ok(Instance {
                    store,
                    bindings,
                    calls: 0,
                    _alive: Alive(self.stats.instances.clone()),
                })
            }
            Ok(Err(types::ConfigError { field, message })) => {
                Err(InstantiateError::Config { field, message })
            }
            Err(e) => Err(InstantiateError::Fault(describe_trap(
                &store,
                &e,
                &self.limits,
            ))),
        }
    }

    fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_micros() as u64;
        (self.limits.call_timeout.as_micros() as u64)
            .div_ceil(tick)
            .max(1)
            + 1
    }

    /// Run the plugin on one batch. On a fault the instance is discarded, so
    /// the next call starts from a fresh one.
    pub fn process(&self, batch: &EncodedBatch) -> Result<PluginAnswer, Fault> {
        let pooled = self.pool.lock().expect("pool lock").pop();
        let mut inst = match pooled {
            Some(i) => i,
            None => self.instantiate().map_err(|e| Fault {
                reason: FaultReason::instantiate,
                message: match e {
                    InstantiateError::Config { field, message } => {
                        format!("init refused its config on a fresh instance: {field}: {message}")
                    }
                    InstantiateError::Fault(m) => format!("could not build a fresh instance: {m}"),
                },
            })?,
        };
        inst.store.set_epoch_deadline(self.deadline_ticks());
        let started = Instant::now();
        let result = inst
            .bindings
            .wraith_plugin_plugin()
            .call_process(&mut inst.store, &batch.0);
        let took = started.elapsed();
        self.metrics.call_seconds.observe(took.as_secs_f64());
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .busy_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        match result {
            Ok(answer) => {
                inst.calls += 1;
                let memory = inst.store.data().memory_bytes();
                let recycle = if inst.calls >= self.limits.max_calls_per_instance {
                    Some(RecycleReason::calls)
                } else if memory >= self.limits.memory_high_water {
                    Some(RecycleReason::memory)
                } else {
                    None
                };
                match recycle {
                    Some(reason) => {
                        self.host
                            .metrics
                            .plugin_recycled
                            .get_or_create(&RecycleLabels {
                                plugin: self.name.clone(),
                                reason,
                            })
                            .inc();
                        tracing::debug!(plugin = %self.name, ?reason, memory, "recycling plugin instance");
                    }
                    None => self.pool.lock().expect("pool lock").push(inst),
                }
                Ok(PluginAnswer {
                    outcomes: answer
                        .outcomes
                        .into_iter()
                        .map(|o| {
                            let v = match o.verdict {
                                types::Verdict::Drop(r) => Verdict::Drop(r),
                                types::Verdict::Reject(r) => Verdict::Reject(r),
                                types::Verdict::Route(r) => Verdict::Route(r),
                            };
                            (o.index, v)
                        })
                        .collect(),
                    edits: answer.edits,
                    edit_data: answer.edit_data,
                })
            }
            Err(e) => {
                let message = describe_trap(&inst.store, &e, &self.limits);
                let reason = if inst.store.data().memory_exceeded() {
                    FaultReason::memory
                } else if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    FaultReason::timeout
                } else {
                    FaultReason::trap
                };
                Err(Fault { reason, message })
            }
        }
    }

    /// Record a fault: counters, last error, and quarantine after too many in a row.
    pub fn record_fault(&self, fault: &Fault) {
        let m = &self.host.metrics;
        m.plugin_faults
            .get_or_create(&FaultLabels {
                plugin: self.name.clone(),
                reason: fault.reason,
            })
            .inc();
        self.stats.faults.fetch_add(1, Ordering::Relaxed);
        *self.stats.last_error.lock().expect("stats lock") = Some(fault.message.clone());
        let n = self
            .stats
            .consecutive_faults
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if n >= self.limits.quarantine_after
            && !self.stats.quarantined.swap(true, Ordering::Relaxed)
        {
            m.plugin_quarantined
                .get_or_create(&PluginLabel {
                    plugin: self.name.clone(),
                })
                .set(1);
            tracing::error!(plugin = %self.name, faults = n, "plugin quarantined after repeated faults; replace its file to load it again");
        }
    }

    /// Record a successful call.
    pub fn record_success(&self) {
        self.stats.consecutive_faults.store(0, Ordering::Relaxed);
    }

    pub fn is_quarantined(&self) -> bool {
        self.stats.quarantined.load(Ordering::Relaxed)
    }

    /// Forget the quarantine gauge when the plugin leaves the chain.
    pub fn retire(&self) {
        self.host
            .metrics
            .plugin_quarantined
            .get_or_create(&PluginLabel {
                plugin: self.name.clone(),
            })
            .set(0);
    }
}

fn describe_trap(store: &Store<HostState>, e: &wasmtime::Error, limits: &Limits) -> String {
    let state = store.data();
    if state.memory_exceeded() {
        return format!(
            "memory limit exceeded: the instance tried to grow past {} bytes",
            limits.memory_limit
        );
    }
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return format!(
            "timed out: the call ran past its {:?} deadline",
            limits.call_timeout
        );
    }
    let trap = e
        .downcast_ref::<Trap>()
        .map(|t| t.to_string())
        .unwrap_or_else(|| format!("{e:#}").lines().next().unwrap_or("").to_string());
    match state.stderr_tail() {
        Some(tail) => format!("trapped: {trap} ({tail})"),
        None => format!("trapped: {trap}"),
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};
    use std::path::Path;

    /// The shape of `wraith:plugin@0.1.0`: every line of `wit/*.wit` without
    /// comments and blank lines, so documentation may change but types,
    /// functions and names may not.
    const CONTRACT_0_1_0: &str = "f4c30552cb7820ae1b04c91c374e7ffd08993ab41ca5fa3f786c80d15d7c72ce";

    fn contract_shape() -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wit"))
            .collect();
        files.sort();
        let mut shape = String::new();
        for f in files {
            shape.push_str(&format!("# {}\n", f.file_name().unwrap().to_string_lossy()));
            for line in std::fs::read_to_string(&f).unwrap().lines() {
                let code = line.split("//").next().unwrap().trim();
                if !code.is_empty() {
                    shape.push_str(code);
                    shape.push('\n');
                }
            }
        }
        shape
    }

    #[test]
    fn the_released_contract_is_frozen() {
        let hash: String = Sha256::digest(contract_shape())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hash, CONTRACT_0_1_0,
            "wit/ no longer matches wraith:plugin@0.1.0, which built plugins rely on. \
             Put the change in a new package version (wraith:plugin@0.2.0), keep 0.1.0 \
             under wit/deps/ and keep loading its plugins; then record that version's shape here"
        );
    }

    /// A component built from WIT text by wit-component (a dummy core
    /// module with the world's exports): what another toolchain, or another
    /// contract version, would hand the gateway.
    fn component_of(dir: &Path) -> Vec<u8> {
        let mut resolve = wit_parser::Resolve::default();
        let (pkg, _) = resolve.push_dir(dir).unwrap();
        let world = resolve.select_world(&[pkg], None).unwrap();
        let mut module =
            wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .unwrap();
        wit_component::ComponentEncoder::default()
            .module(&module)
            .unwrap()
            .validate(true)
            .encode()
            .unwrap()
    }

    fn load_error(wit: &[(&str, String)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in wit {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let file = dir.path().join("plugin.wasm");
        std::fs::write(&file, component_of(dir.path())).unwrap();
        let host =
            super::Host::new(None, std::sync::Arc::new(crate::telemetry::Metrics::new())).unwrap();
        let limits = super::Limits::from_config(&Default::default());
        match host.load("candidate", &file, "{}".into(), limits) {
            Ok(_) => panic!("a foreign component loaded"),
            Err(e @ super::LoadError::Contract { .. }) => e.to_string(),
            Err(e) => panic!("not a contract error: {e}"),
        }
    }

    #[test]
    fn a_component_of_another_contract_version_is_refused_naming_both() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let files: Vec<(&str, String)> = ["types.wit", "host.wit", "world.wit"]
            .into_iter()
            .map(|f| {
                let text = std::fs::read_to_string(wit.join(f)).unwrap();
                (f, text.replace("0.1.0", "0.2.0"))
            })
            .collect();
        let e = load_error(&files);
        assert!(e.contains("it targets wraith:plugin@0.2.0"), "{e}");
        assert!(e.contains("wraith:plugin/plugin@0.2.0"), "{e}");
        assert!(e.contains("this gateway hosts wraith:plugin@0.1.0"), "{e}");
    }

    #[test]
    fn a_component_of_no_plugin_contract_is_refused_naming_its_exports() {
        let e = load_error(&[(
            "other.wit",
            "package acme:thing@1.0.0;\ninterface run { go: func() -> u32; }\nworld thing { export run; }\n".into(),
        )]);
        assert!(e.contains("it exports no wraith:plugin interface"), "{e}");
        assert!(e.contains("acme:thing/run@1.0.0"), "{e}");
        assert!(e.contains("this gateway hosts wraith:plugin@0.1.0"), "{e}");
    }
}
