//! What the status page shows beyond the counters: throughput over the last
//! minutes (sampled from the counters) and the newest dead-letter reasons.
//! Reasons only: an event's contents never reach this module.

use crate::telemetry::Metrics;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often throughput is sampled, and how many samples are kept.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
pub const SAMPLES_KEPT: usize = 120;
/// Dead-letter reasons kept, newest first, and the length a reason is cut to.
pub const DEAD_LETTERS_KEPT: usize = 50;
const REASON_MAX: usize = 300;

/// The counters' totals at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub received: u64,
    pub accepted: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
    pub invalid: u64,
}

impl Totals {
    pub fn read(m: &Metrics) -> Self {
        Totals {
            received: m.events_received.get(),
            accepted: m.events_accepted.get(),
            dropped: m.events_dropped.get(),
            dead_lettered: m.events_dead_lettered.get(),
            invalid: m.events_invalid.get(),
        }
    }
}

/// Events per second over one sampling interval that ended at `at`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Rate {
    /// Unix time in milliseconds.
    pub at: i64,
    pub received: f64,
    pub accepted: f64,
    pub dropped: f64,
    pub dead_lettered: f64,
    pub invalid: f64,
}

/// Why an event went to the dead-letter queue (never what it held).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeadLetterNote {
    /// RFC 3339, UTC.
    pub at: String,
    pub plugin: String,
    /// `rejected`, `faulted` or `quarantined`.
    pub kind: &'static str,
    pub reason: String,
    /// Consecutive notes with the same plugin, kind and reason are folded.
    pub count: u64,
}

#[derive(Default)]
struct Inner {
    last: Option<(i64, Totals)>,
    rates: VecDeque<Rate>,
    dead_letters: VecDeque<DeadLetterNote>,
    reload: Option<serde_json::Value>,
}

/// The gateway's recent activity.
#[derive(Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

impl Activity {
    /// Record the counters' totals now; from the second call on, each call
    /// adds one [`Rate`].
    pub fn sample(&self, now_ms: i64, totals: Totals) {
        let mut inner = self.inner.lock().expect("activity");
        if let Some((at, last)) = inner.last {
            let secs = ((now_ms - at) as f64 / 1000.0).max(0.001);
            let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
            let rate = Rate {
                at: now_ms,
                received: per(totals.received, last.received),
                accepted: per(totals.accepted, last.accepted),
                dropped: per(totals.dropped, last.dropped),
                dead_lettered: per(totals.dead_lettered, last.dead_lettered),
                invalid: per(totals.invalid, last.invalid),
            };
            if inner.rates.len() == SAMPLES_KEPT {
                inner.rates.pop_front();
            }
            inner.rates.push_back(rate);
        }
        inner.last = Some((now_ms, totals));
    }

    /// The rates, oldest first.
    pub fn rates(&self) -> Vec<Rate> {
        self.inner
            .lock()
            .expect("activity")
            .rates
            .iter()
            .copied()
            .collect()
    }

    /// Note a dead letter's reason.
    pub fn dead_letter(&self, at: &str, plugin: &str, kind: &'static str, reason: &str) {
        let reason: String = reason
            .chars()
            .take(REASON_MAX)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut inner = self.inner.lock().expect("activity");
        if let Some(first) = inner.dead_letters.front_mut()
            && first.plugin == plugin
            && first.kind == kind
            && first.reason == reason
        {
            first.count += 1;
            first.at = at.to_string();
            return;
        }
        if inner.dead_letters.len() == DEAD_LETTERS_KEPT {
            inner.dead_letters.pop_back();
        }
        inner.dead_letters.push_front(DeadLetterNote {
            at: at.to_string(),
            plugin: plugin.to_string(),
            kind,
            reason,
            count: 1,
        });
    }

    /// The newest dead-letter reasons first.
    pub fn dead_letters(&self) -> Vec<DeadLetterNote> {
        self.inner
            .lock()
            .expect("activity")
            .dead_letters
            .iter()
            .cloned()
            .collect()
    }

    /// The newest config reload's outcome (`ops::ReloadOutcome`).
    pub fn set_reload(&self, outcome: serde_json::Value) {
        self.inner.lock().expect("activity").reload = Some(outcome);
    }

    pub fn last_reload(&self) -> Option<serde_json::Value> {
        self.inner.lock().expect("activity").reload.clone()
    }

    /// Sample `metrics` every [`SAMPLE_EVERY`] for as long as `self` lives.
    pub fn spawn_sampler(self: &Arc<Self>, metrics: Arc<Metrics>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                let Some(a) = weak.upgrade() else { return };
                a.sample(now_ms(), Totals::read(&metrics));
            }
        });
    }
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_over_the_interval_and_bounded() {
        let a = Activity::default();
        a.sample(0, Totals::default());
        assert!(a.rates().is_empty());
        a.sample(
            5_000,
            Totals {
                received: 500,
                accepted: 450,
                dropped: 40,
                dead_lettered: 10,
                invalid: 0,
            },
        );
        let r = a.rates();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].received, r[0].accepted, r[0].dropped),
            (100.0, 90.0, 8.0)
        );
        for i in 2..(SAMPLES_KEPT as i64 + 10) {
            a.sample(i * 5_000, Totals::default());
        }
        assert_eq!(a.rates().len(), SAMPLES_KEPT);
    }

    #[test]
    fn dead_letters_fold_repeats_keep_the_newest_first_and_cut_long_reasons() {
        let a = Activity::default();
        a.dead_letter("t1", "schema-validate", "rejected", "missing `tool`");
        a.dead_letter("t2", "schema-validate", "rejected", "missing `tool`");
        a.dead_letter("t3", "pii-scrub", "faulted", &"x".repeat(1000));
        let d = a.dead_letters();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].plugin, "pii-scrub");
        assert_eq!(d[0].reason.len(), REASON_MAX);
        assert_eq!((d[1].count, d[1].at.as_str()), (2, "t2"));
        for i in 0..(DEAD_LETTERS_KEPT + 5) {
            a.dead_letter("t", "p", "rejected", &i.to_string());
        }
        assert_eq!(a.dead_letters().len(), DEAD_LETTERS_KEPT);
    }
}
