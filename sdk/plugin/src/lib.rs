//! Write plugins for the [Wraith](https://github.com/wraith-telemetry/wraith) telemetry
//! gateway in Rust.
//!
//! A plugin is a type that implements [`Plugin`]: it is built once from the
//! operator's config, then decides about each event of every batch — keep it
//! (possibly changed), drop it, reject it to the dead-letter queue, or route it to
//! a named destination. [`export!`] turns it into a WebAssembly component for the
//! gateway; the same code runs natively under [`testing::Harness`] for unit tests.
//!
//! ```
//! use wraith_plugin::{Config, ConfigError, Event, Plugin, Verdict};
//!
//! /// Replaces the `user` field with a fixed placeholder and drops debug events.
//! struct HideUser {
//!     placeholder: String,
//! }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     #[serde(default = "default_placeholder")]
//!     placeholder: String,
//! }
//!
//! fn default_placeholder() -> String {
//!     "[user]".into()
//! }
//!
//! impl Plugin for HideUser {
//!     fn init(config: Config) -> Result<Self, ConfigError> {
//!         let s: Settings = config.parse()?;
//!         Ok(HideUser { placeholder: s.placeholder })
//!     }
//!
//!     fn process(&mut self, event: &mut Event<'_>) -> Verdict {
//!         if event.get_str("level") == Some("debug") {
//!             return Verdict::Drop("debug events are not collected".into());
//!         }
//!         if event.get("user").is_some() {
//!             event.set_str("user", &self.placeholder);
//!             wraith_plugin::counter("users_hidden", 1);
//!         }
//!         Verdict::Keep
//!     }
//! }
//!
//! wraith_plugin::export!(HideUser);
//!
//! // A native unit test: no WebAssembly involved.
//! use serde_json::json;
//! use wraith_plugin::testing::Harness;
//!
//! let mut h = Harness::<HideUser>::new(json!({"placeholder": "anon"})).unwrap();
//! let out = h.run_one(json!({"event_type": "login", "user": "ada"}));
//! assert_eq!(out.event["user"], "anon");
//! assert_eq!(out.verdict, Verdict::Keep);
//! assert_eq!(h.counters()["users_hidden"], 1);
//!
//! let err = Harness::<HideUser>::new(json!({"placeholdr": "x"})).err().unwrap();
//! assert!(err.message.contains("unknown field `placeholdr`"));
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate type
//! `cdylib`) and drop the `.wasm` into the gateway's plugins folder.
//!
//! # What a plugin sees
//!
//! Events arrive flattened into *leaves*: one per scalar value, keyed by a dotted
//! path (`context.os`, `tags[0]`, `frames[2].file`; see [`path`]). [`Event::get`]
//! reads a leaf, [`Event::leaves`] walks them all (what a scrubber does), and the
//! `set_*`/[`Event::remove`] methods record edits that the gateway applies after
//! the plugin answers. Nothing is parsed or copied unless the plugin asks for it.

#![warn(missing_docs)]

use std::cell::RefCell;
use std::collections::BTreeMap;

pub use serde_json;
pub use wraith_event::destination;
use wraith_event::flat::{BatchView, EDIT_WORDS, EditBuffer, EventView};
pub use wraith_event::flat::{Leaf, ValueRef, at_or_under, same_bytes};
pub use wraith_event::path;

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        world: "wraith-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_wraith_plugin",
        default_bindings_module: "wraith_plugin::__bindings",
    });
}

/// A Wraith plugin.
pub trait Plugin: Sized + 'static {
    /// Build the plugin from the operator's config (an empty object when none
    /// is given). Refuse a bad config with a [`ConfigError`] naming the field:
    /// the gateway then does not load the plugin and shows the error.
    fn init(config: Config) -> Result<Self, ConfigError>;

    /// Decide about one event. Edits made through `event` are kept unless the
    /// verdict drops or rejects the event.
    fn process(&mut self, event: &mut Event<'_>) -> Verdict;
}

/// What a plugin decided about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the event, with any edits.
    Keep,
    /// Drop the event on purpose (sampling, filtering); the reason is counted.
    Drop(String),
    /// The event is invalid: it goes to the dead-letter queue with this reason.
    Reject(String),
    /// Keep the event and send it to this destination (`[a-z0-9_-]`, ≤ 64 bytes).
    Route(String),
}

/// The operator's config for a plugin, as JSON.
#[derive(Debug, Clone)]
pub struct Config {
    value: serde_json::Value,
}

impl Config {
    /// Wrap a JSON value.
    pub fn new(value: serde_json::Value) -> Self {
        Config { value }
    }

    /// The raw JSON.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// Deserialize into a typed settings struct; errors name the failing field
    /// (use `#[serde(deny_unknown_fields)]` to catch typos).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(&self.value).map_err(|e| {
            let mut field = e.path().to_string();
            if field == "." {
                field.clear();
            }
            let message = e.into_inner().to_string();
            // serde reports a missing field at its parent; name the field itself.
            if let Some(missing) = message
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
            {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(missing);
            }
            ConfigError { field, message }
        })
    }
}

/// Why a plugin refused its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending field (dotted path), or empty for the config as a whole.
    pub field: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl ConfigError {
    /// An error about `field` (a dotted path into the config; empty for the
    /// config as a whole).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// One event of the batch being processed.
pub struct Event<'a> {
    view: EventView<'a>,
    index: u32,
    edits: &'a mut EditBuffer,
    first_edit: usize,
}

impl<'a> Event<'a> {
    /// Position of the event in its batch.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The value at `path`, including edits this plugin already made to it.
    /// Only leaves (scalars, empty objects and arrays) have values.
    pub fn get(&self, path: &str) -> Option<ValueRef<'_>> {
        let mine = &self.edits.edits[self.first_edit..];
        for w in mine.chunks_exact(EDIT_WORDS).rev() {
            let p = &self.edits.data[w[2] as usize..(w[2] + w[3]) as usize];
            if p == path.as_bytes() {
                if w[1] == wraith_event::flat::op::REMOVE {
                    return None;
                }
                let bytes = &self.edits.data[w[5] as usize..(w[5] + w[6]) as usize];
                return ValueRef::decode(w[4], bytes).ok();
            }
        }
        self.view.get(path)
    }

    /// The string at `path`, if it is a string.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(|v| v.as_str())
    }

    /// Every leaf of the event as it arrived (edits are not reflected).
    pub fn leaves(&self) -> impl Iterator<Item = Leaf<'a>> + '_ {
        self.view.leaves()
    }

    /// Set `path` to `value`, creating objects along the way.
    pub fn set(&mut self, path: &str, value: ValueRef<'_>) {
        self.edits.set(self.index, path, value);
    }

    /// Set `path` to a string.
    pub fn set_str(&mut self, path: &str, value: &str) {
        self.set(path, ValueRef::String(value));
    }

    /// Set `path` to an integer.
    pub fn set_i64(&mut self, path: &str, value: i64) {
        // Written on the stack: no allocation per number.
        self.set(path, ValueRef::Number(itoa::Buffer::new().format(value)));
    }

    /// Set `path` to a number; non-finite numbers become `null`.
    pub fn set_f64(&mut self, path: &str, value: f64) {
        match serde_json::Number::from_f64(value) {
            Some(n) => self.set(path, ValueRef::Number(&n.to_string())),
            None => self.set(path, ValueRef::Null),
        }
    }

    /// Set `path` to a boolean.
    pub fn set_bool(&mut self, path: &str, value: bool) {
        self.set(path, ValueRef::Bool(value));
    }

    /// Set `path` to any JSON value (objects and arrays included).
    pub fn set_json(&mut self, path: &str, value: &serde_json::Value) {
        self.set(path, ValueRef::Json(&value.to_string()));
    }

    /// Remove `path` (and everything under it).
    pub fn remove(&mut self, path: &str) {
        self.edits.remove(self.index, path);
    }
}

/// Run a plugin over a batch; returns the non-keep verdicts and the edits.
fn run_batch<P: Plugin>(plugin: &mut P, view: BatchView<'_>) -> (Vec<(u32, Verdict)>, EditBuffer) {
    let mut edits = EditBuffer::default();
    let mut outcomes = Vec::new();
    for i in 0..view.len() {
        let first_edit = edits.edits.len();
        let mut event = Event {
            view: view.event(i),
            index: i as u32,
            edits: &mut edits,
            first_edit,
        };
        match plugin.process(&mut event) {
            Verdict::Keep => {}
            v @ (Verdict::Drop(_) | Verdict::Reject(_)) => {
                // Edits to an event that does not travel on are not sent back.
                edits.edits.truncate(first_edit);
                outcomes.push((i as u32, v));
            }
            v => outcomes.push((i as u32, v)),
        }
    }
    (outcomes, edits)
}

/// Log levels for [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Detail for debugging a plugin; hidden by the gateway's default filter.
    Debug,
    /// Normal operation worth a line.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something the plugin could not handle.
    Error,
}

/// Write a log line through the gateway, tagged with the plugin's name. Never
/// put event values in it.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use __bindings::wraith::plugin::types::LogLevel as L;
        let l = match level {
            LogLevel::Debug => L::Debug,
            LogLevel::Info => L::Info,
            LogLevel::Warn => L::Warn,
            LogLevel::Error => L::Error,
        };
        __bindings::wraith::plugin::host::log(l, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE.with(|n| n.borrow_mut().logs.push((level, message.to_string())));
}

/// Add `delta` to this plugin's counter `name` (`[a-z0-9_]`), shown in the
/// gateway's `/metrics`. Inside the gateway the counts of a batch are summed
/// by name and handed over once the batch is processed (one call into the
/// host per name and batch, not per event).
pub fn counter(name: &str, delta: u64) {
    #[cfg(target_arch = "wasm32")]
    __glue::count(name, delta);
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE.with(|n| *n.borrow_mut().counters.entry(name.to_string()).or_default() += delta);
}

#[derive(Default)]
struct NativeHost {
    logs: Vec<(LogLevel, String)>,
    counters: BTreeMap<String, u64>,
}

thread_local! {
    static NATIVE: RefCell<NativeHost> = RefCell::new(NativeHost::default());
}

pub mod testing {
    //! Run a plugin natively, through the same batch layout and edit
    //! application the gateway uses.

    use super::*;
    use serde_json::Value;
    use wraith_event::flat::{FlatBatch, apply_edits};

    /// An event after the plugin ran, with its verdict.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Processed {
        /// The event with the plugin's edits applied.
        pub event: Value,
        /// What the plugin decided ([`Verdict::Keep`] when it said nothing).
        pub verdict: Verdict,
    }

    /// Holds an initialised plugin and runs batches through it.
    ///
    /// Each harness records its own logs and counters, so several harnesses
    /// in one test do not see each other's.
    pub struct Harness<P> {
        plugin: P,
        host: NativeHost,
    }

    /// Run `f` with `host` as the thread's recording host, then take it back.
    fn with_host<T>(host: &mut NativeHost, f: impl FnOnce() -> T) -> T {
        NATIVE.with(|n| std::mem::swap(&mut *n.borrow_mut(), host));
        let out = f();
        NATIVE.with(|n| std::mem::swap(&mut *n.borrow_mut(), host));
        out
    }

    impl<P: Plugin> Harness<P> {
        /// Initialise the plugin with a JSON config. Logs written by `init`
        /// are recorded too.
        pub fn new(config: Value) -> Result<Self, ConfigError> {
            let mut host = NativeHost::default();
            let plugin = with_host(&mut host, || P::init(Config::new(config)))?;
            Ok(Harness { plugin, host })
        }

        /// Run one batch.
        pub fn run(&mut self, events: Vec<Value>) -> Vec<Processed> {
            let batch = FlatBatch::encode(&events);
            let plugin = &mut self.plugin;
            let (outcomes, edits) = with_host(&mut self.host, || run_batch(plugin, batch.view()));
            let mut events = events;
            apply_edits(&mut events, &edits.edits, &edits.data)
                .expect("the SDK writes well-formed edits");
            let mut verdicts = vec![Verdict::Keep; events.len()];
            for (i, v) in outcomes {
                verdicts[i as usize] = v;
            }
            events
                .into_iter()
                .zip(verdicts)
                .map(|(event, verdict)| Processed { event, verdict })
                .collect()
        }

        /// Run a batch of one event.
        pub fn run_one(&mut self, event: Value) -> Processed {
            self.run(vec![event]).pop().expect("one event in, one out")
        }

        /// Counters recorded since [`Harness::new`].
        pub fn counters(&self) -> BTreeMap<String, u64> {
            self.host.counters.clone()
        }

        /// Log lines recorded since [`Harness::new`].
        pub fn logs(&self) -> Vec<(LogLevel, String)> {
            self.host.logs.clone()
        }

        /// The plugin itself.
        pub fn plugin(&mut self) -> &mut P {
            &mut self.plugin
        }
    }

    /// The `config` table of plugin `plugin` in every ```` ```toml ```` block
    /// of a Markdown document, as the gateway hands it to the plugin (JSON),
    /// in the order they appear. Blocks that do not configure `plugin` are
    /// skipped.
    ///
    /// Use it to keep a README's config examples honest:
    ///
    /// ```
    /// # use wraith_plugin::testing::configs_in_markdown;
    /// let readme = "Mask e-mails:\n\n```toml\n[plugins.scrub.config]\nmask = \"[email]\"\n```\n";
    /// let configs = configs_in_markdown(readme, "scrub").unwrap();
    /// assert_eq!(configs, vec![serde_json::json!({"mask": "[email]"})]);
    /// ```
    ///
    /// A block that is not valid TOML is an error naming the block's line.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn configs_in_markdown(markdown: &str, plugin: &str) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut lines = markdown.lines().enumerate();
        while let Some((start, line)) = lines.next() {
            if line.trim_end() != "```toml" {
                continue;
            }
            let body: Vec<&str> = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| !l.trim_start().starts_with("```"))
                .collect();
            let table: toml::Table = toml::from_str(&body.join("\n"))
                .map_err(|e| format!("the TOML block at line {}: {e}", start + 1))?;
            let config = table
                .get("plugins")
                .and_then(|p| p.get(plugin))
                .and_then(|p| p.get("config"));
            if let Some(config) = config {
                out.push(serde_json::to_value(config).map_err(|e| e.to_string())?);
            }
        }
        Ok(out)
    }
}

#[doc(hidden)]
pub mod __glue {
    //! What [`export!`] expands to calls; not part of the API.
    use super::*;
    use __bindings::wraith::plugin::types as wit;

    pub fn init<P: Plugin>(state: &mut Option<P>, config: String) -> Result<(), wit::ConfigError> {
        let value = match serde_json::from_str(&config) {
            Ok(v) => v,
            Err(e) => {
                return Err(wit::ConfigError {
                    field: String::new(),
                    message: format!("config is not valid JSON: {e}"),
                });
            }
        };
        let initialised = P::init(Config::new(value));
        flush_counters();
        match initialised {
            Ok(p) => {
                *state = Some(p);
                Ok(())
            }
            Err(e) => Err(wit::ConfigError {
                field: e.field,
                message: e.message,
            }),
        }
    }

    thread_local! {
        /// Counts added since the last hand-over, summed by name.
        static PENDING: std::cell::RefCell<Vec<(String, u64)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }

    /// Names held before the counts are handed over early (a plugin that
    /// makes up names per event still costs one call per name).
    const MAX_PENDING: usize = 32;

    /// Add to a counter of the batch being processed.
    pub fn count(name: &str, delta: u64) {
        let full = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            match p.iter_mut().find(|(n, _)| n == name) {
                Some((_, d)) => *d = d.saturating_add(delta),
                None => p.push((name.to_string(), delta)),
            }
            p.len() >= MAX_PENDING
        });
        if full {
            flush_counters();
        }
    }

    /// Hand the summed counts over to the host.
    pub fn flush_counters() {
        let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        for (_name, _delta) in pending {
            #[cfg(target_arch = "wasm32")]
            __bindings::wraith::plugin::host::counter_add(&_name, _delta);
        }
    }

    pub fn process<P: Plugin>(state: &mut Option<P>, batch: wit::Batch) -> wit::BatchResult {
        let plugin = state
            .as_mut()
            .expect("the gateway calls init before process");
        let view = BatchView::new(&batch.data, &batch.leaves, &batch.events);
        let (outcomes, edits) = run_batch(plugin, view);
        flush_counters();
        wit::BatchResult {
            outcomes: outcomes
                .into_iter()
                .map(|(index, v)| wit::Outcome {
                    index,
                    verdict: match v {
                        Verdict::Drop(r) => wit::Verdict::Drop(r),
                        Verdict::Reject(r) => wit::Verdict::Reject(r),
                        Verdict::Route(r) => wit::Verdict::Route(r),
                        Verdict::Keep => unreachable!("keep is not sent"),
                    },
                })
                .collect(),
            edits: edits.edits,
            edit_data: edits.data,
        }
    }
}

/// Export a [`Plugin`] implementation as the component's `wraith:plugin` world.
/// Expands to nothing when not compiling for WebAssembly, so the crate's native
/// tests need no special setup.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __WraithGuest;
            ::std::thread_local! {
                static __WRAITH_STATE: ::core::cell::RefCell<::core::option::Option<$plugin>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }
            impl $crate::__bindings::exports::wraith::plugin::plugin::Guest for __WraithGuest {
                fn init(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), $crate::__bindings::wraith::plugin::types::ConfigError> {
                    __WRAITH_STATE.with(|s| $crate::__glue::init::<$plugin>(&mut s.borrow_mut(), config))
                }
                fn process(
                    batch: $crate::__bindings::wraith::plugin::types::Batch,
                ) -> $crate::__bindings::wraith::plugin::types::BatchResult {
                    __WRAITH_STATE.with(|s| $crate::__glue::process::<$plugin>(&mut s.borrow_mut(), batch))
                }
            }
            $crate::__bindings::__export_wraith_plugin!(__WraithGuest with_types_in $crate::__bindings);
        };
    };
}

/// A view of raw batch buffers, for plugins that speak the contract without
/// [`Plugin`]; not part of the stable API.
#[doc(hidden)]
pub fn __view<'a>(data: &'a [u8], leaves: &'a [u32], events: &'a [u32]) -> BatchView<'a> {
    BatchView::new(data, leaves, events)
}
