//! The daemon's log: one line per lifecycle step or problem, to a file
//! (never to the tool's terminal), kept under 1 MiB by rotating to `.1`.
//! Never an event's contents.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::OnceLock;

const MAX_BYTES: u64 = 1 << 20;

struct Log {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    echo: bool,
}

static LOG: OnceLock<Log> = OnceLock::new();

/// Log to `path`; with `echo`, also to stderr (for `--foreground` by hand).
pub fn init(path: PathBuf, echo: bool) {
    let _ = LOG.set(Log {
        path,
        file: Mutex::new(None),
        echo,
    });
}

pub fn write(level: &str, msg: std::fmt::Arguments<'_>) {
    let line = format!(
        "{} {level:<5} {msg}\n",
        crate::time::rfc3339(crate::time::unix_ms())
    );
    let Some(log) = LOG.get() else {
        eprint!("{line}");
        return;
    };
    if log.echo {
        eprint!("{line}");
    }
    let Ok(mut guard) = log.file.lock() else {
        return;
    };
    if guard.is_none() {
        if let Some(dir) = log.path.parent() {
            let _ = wraith_sdk::settings::create_private_dir(dir);
        }
        *guard = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log.path)
            .ok();
    }
    if let Some(f) = guard.as_mut() {
        let _ = f.write_all(line.as_bytes());
        if f.metadata().is_ok_and(|m| m.len() > MAX_BYTES) {
            let _ = std::fs::rename(&log.path, log.path.with_extension("log.1"));
            *guard = None;
        }
    }
}

macro_rules! info {
    ($($t:tt)*) => { $crate::log::write("INFO", format_args!($($t)*)) };
}
macro_rules! warning {
    ($($t:tt)*) => { $crate::log::write("WARN", format_args!($($t)*)) };
}
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write("ERROR", format_args!($($t)*)) };
}
pub(crate) use {error, info, warning};
