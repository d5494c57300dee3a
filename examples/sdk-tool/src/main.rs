//! `sdk-tool`: a small command-line tool that reports its use with
//! `wraith-sdk`, as a tool author would add it: one `init`, one `timed`.
//!
//! ```text
//! sdk-tool count FILE...     count the lines of files (tool_invoked, then tool_succeeded or tool_failed)
//! sdk-tool process           read lines on stdin, one `line_processed` event each, until end of input
//! ```

use std::io::BufRead;

#[derive(Debug)]
struct UsageError;

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("usage: sdk-tool count FILE... | sdk-tool process")
    }
}

impl std::error::Error for UsageError {}

fn main() -> std::process::ExitCode {
    // The two lines a tool adds: set up once, keep the guard until exit.
    let _telemetry = wraith_sdk::init("sdk-tool", env!("CARGO_PKG_VERSION"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("count") => wraith_sdk::timed("count", || count(&args[1..]))
            .map(|n| println!("{n}"))
            .map_err(Into::into),
        Some("process") => wraith_sdk::timed("process", process).map_err(Into::into),
        _ => Err(Box::new(UsageError) as Box<dyn std::error::Error>),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sdk-tool: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Sent as `error_type` when it fails: `std::io::error::Error`, never the
/// message (which would hold the file's path).
fn count(files: &[String]) -> std::io::Result<usize> {
    let mut n = 0;
    for f in files {
        n += std::fs::read_to_string(f)?.lines().count();
    }
    Ok(n)
}

/// One event per input line: `line_processed` with the line's number, its
/// first word and its first 60 characters as `sample` (free text like this
/// can hold personal data: the gateway's `pii-scrub` plugin masks it before
/// anything is stored). A line starting with `crash` is a critical event.
fn process() -> std::io::Result<()> {
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        let word = line.split_whitespace().next().unwrap_or("");
        let level = if word == "crash" {
            wraith_sdk::Level::Critical
        } else {
            wraith_sdk::Level::Info
        };
        wraith_sdk::track(
            wraith_sdk::Event::new("line_processed")
                .level(level)
                .command("process")
                .field("line_no", i as u64 + 1)
                .field("word", word)
                .field("sample", line.chars().take(60).collect::<String>()),
        );
    }
    Ok(())
}
