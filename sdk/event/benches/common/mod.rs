//! What wraith-event's benches share: the realistic events of the gateway's
//! end-to-end bench and the settings every bench reads.

#[path = "../../../../gateway/benches/support/events.rs"]
#[allow(dead_code)]
pub mod events;

/// Whether cargo only asks for the list of benches (`--list`), when a bench
/// does nothing.
pub fn listing() -> bool {
    std::env::args().any(|a| a == "--list")
}

/// How long a bench runs: `WRAITH_BENCH_SECS`, or `default` seconds.
pub fn secs(default: f64) -> f64 {
    std::env::var("WRAITH_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
