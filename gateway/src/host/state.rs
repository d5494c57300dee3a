//! The per-instance store state: WASI with nothing granted, the memory
//! limiter, and the `host` imports of the contract.

use super::wraith::plugin::{host, types};
use crate::telemetry::{Metrics, PluginCounterLabels};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Most distinct counter names one plugin may use.
pub const MAX_COUNTER_NAMES: usize = 64;
/// Longest log message kept from a plugin, in bytes.
const MAX_LOG_BYTES: usize = 1024;
/// How much of a plugin's stderr is kept (to explain panics).
const STDERR_CAPACITY: usize = 64 * 1024;

pub struct HostState {
    plugin: String,
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    memory_limit: usize,
    memory_bytes: usize,
    memory_exceeded: bool,
    metrics: Arc<Metrics>,
    counter_names: Arc<Mutex<HashSet<String>>>,
}

impl HostState {
    pub fn new(
        plugin: String,
        memory_limit: usize,
        metrics: Arc<Metrics>,
        counter_names: Arc<Mutex<HashSet<String>>>,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // Nothing is granted: no preopened directories, no environment, no
        // arguments, stdin closed, stdout discarded, every socket refused.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            plugin,
            wasi,
            table: ResourceTable::new(),
            stderr,
            memory_limit,
            memory_bytes: 0,
            memory_exceeded: false,
            metrics,
            counter_names,
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    pub fn memory_exceeded(&self) -> bool {
        self.memory_exceeded
    }

    /// The last line the instance wrote to stderr (a panic message, usually;
    /// an instance is thrown away after its first fault, so this is the
    /// faulting call's).
    pub fn stderr_tail(&self) -> Option<String> {
        let all = self.stderr.contents();
        let text = String::from_utf8_lossy(&all);
        // Skip Rust's "note: run with RUST_BACKTRACE=1" hint; keep the panic
        // location with its message.
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: "))
            .collect();
        let (last, before) = lines.split_last()?;
        let line = match before.last() {
            Some(prev) if prev.contains("panicked at") && !last.contains("panicked at") => {
                format!("{} {last}", prev.trim_start_matches("thread '<unnamed>' "))
            }
            _ => last.to_string(),
        };
        Some(line.chars().take(300).collect())
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded (wanted {desired})",
                self.memory_limit
            ));
        }
        self.memory_bytes = self.memory_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::LogLevel, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let plugin = self.plugin.as_str();
        match level {
            types::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            types::LogLevel::Info => tracing::info!(plugin, "{message}"),
            types::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            types::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            tracing::warn!(plugin = %self.plugin, "ignoring counter with an invalid name (use [a-z0-9_], at most 64 bytes)");
            return;
        }
        {
            let mut names = self.counter_names.lock().expect("counter names lock");
            if !names.contains(&name) {
                if names.len() >= MAX_COUNTER_NAMES {
                    if names.len() == MAX_COUNTER_NAMES {
                        names.insert(String::new());
                        tracing::warn!(plugin = %self.plugin, "plugin uses more than {MAX_COUNTER_NAMES} counter names; ignoring new ones");
                    }
                    return;
                }
                names.insert(name.clone());
            }
        }
        self.metrics
            .plugin_counter
            .get_or_create(&PluginCounterLabels {
                plugin: self.plugin.clone(),
                name,
            })
            .inc_by(delta);
    }
}
