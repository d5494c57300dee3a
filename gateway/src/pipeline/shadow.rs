//! Shadow runs: a candidate plugin (`mode = "shadow"`, `shadows = "LIVE"`
//! in `plugins.toml`) runs on the very batches its live plugin gets; its
//! answers are compared with the live answers and never applied. Counted:
//! batches and events seen, events whose verdict differs (by the pair of
//! verdict kinds), events whose edits differ (by path), the shadow's faults
//! and its time against the live plugin's. Values never leave the
//! comparison: a difference is named by its path or verdict kind only.
//!
//! A shadow fault (trap, timeout, memory) is counted and nothing else: the
//! batch goes on with the live answer, no dead letter is written, and the
//! shadow is never quarantined into the live path.

use crate::host::{EncodedBatch, PluginAnswer, PluginRuntime, Verdict};
use crate::telemetry::{Metrics, ShadowDiffLabels, ShadowLabels, ShadowTimeLabels};
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wraith_event::flat::EDIT_WORDS;

/// A shadow attached to its live plugin's link.
#[derive(Clone)]
pub struct Shadow {
    pub runtime: Arc<PluginRuntime>,
    pub stats: Arc<ShadowStats>,
}

/// What the comparison found so far: the counters are the exported
/// metrics' own (`wraith_shadow_*{shadow, live}`).
#[derive(Default)]
pub struct ShadowStats {
    pub batches: Counter,
    pub events: Counter,
    pub verdict_diffs: Counter,
    pub edit_diffs: Counter,
    pub faults: Counter,
    pub shadow_seconds: Counter<f64, AtomicU64>,
    pub live_seconds: Counter<f64, AtomicU64>,
    /// Events whose edits differ, by edited path.
    paths: Mutex<BTreeMap<String, u64>>,
    /// Events whose verdict differs, by `live->shadow` verdict kinds.
    verdicts: Mutex<BTreeMap<String, u64>>,
    last_fault: Mutex<Option<String>>,
}

impl ShadowStats {
    /// Counters registered under `shadow` and `live`.
    pub fn registered(metrics: &Metrics, shadow: &str, live: &str) -> ShadowStats {
        let l = ShadowLabels {
            shadow: shadow.to_string(),
            live: live.to_string(),
        };
        let diff = |kind| ShadowDiffLabels {
            shadow: shadow.to_string(),
            live: live.to_string(),
            kind,
        };
        let time = |plugin| ShadowTimeLabels {
            shadow: shadow.to_string(),
            live: live.to_string(),
            plugin,
        };
        // One statement each: a family's guard lives to the end of its
        // statement, and a second `get_or_create` on the same family in
        // that statement would wait for it forever.
        let batches = metrics.shadow_batches.get_or_create(&l).clone();
        let events = metrics.shadow_events.get_or_create(&l).clone();
        let faults = metrics.shadow_faults.get_or_create(&l).clone();
        let verdict_diffs = metrics
            .shadow_differences
            .get_or_create(&diff("verdict"))
            .clone();
        let edit_diffs = metrics
            .shadow_differences
            .get_or_create(&diff("edits"))
            .clone();
        let shadow_seconds = metrics
            .shadow_call_seconds
            .get_or_create(&time("shadow"))
            .clone();
        let live_seconds = metrics
            .shadow_call_seconds
            .get_or_create(&time("live"))
            .clone();
        ShadowStats {
            batches,
            events,
            verdict_diffs,
            edit_diffs,
            faults,
            shadow_seconds,
            live_seconds,
            ..Default::default()
        }
    }
}

/// `/v1/plugins`'s view of one shadow.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShadowStatus {
    pub name: String,
    pub shadows: String,
    pub sha256: String,
    pub batches: u64,
    pub events: u64,
    /// Events whose verdict differs from the live plugin's.
    pub verdict_differs: u64,
    /// Events whose edits differ from the live plugin's.
    pub edits_differ: u64,
    /// The differing verdicts, as `live->shadow` (`keep->drop`, …), with counts.
    pub verdict_changes: BTreeMap<String, u64>,
    /// The paths whose edits differ, with counts of events.
    pub edit_paths: BTreeMap<String, u64>,
    pub faults: u64,
    pub last_fault: Option<String>,
    /// Seconds spent in the shadow's calls and in the live plugin's calls
    /// on the same batches.
    pub shadow_seconds: f64,
    pub live_seconds: f64,
    /// Why it runs on nothing (its live plugin is not in the chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The most distinct paths and verdict pairs kept per shadow (a plugin
/// editing array elements could otherwise make this grow without bound).
const MAX_KEYS: usize = 200;

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    let mut m = map.lock().expect("shadow stats");
    if let Some(n) = m.get_mut(key) {
        *n += 1;
    } else if m.len() < MAX_KEYS {
        m.insert(key.to_string(), 1);
    } else {
        *m.entry("(other)".to_string()).or_default() += 1;
    }
}

fn kind(v: Option<&Verdict>) -> String {
    match v {
        None => "keep".into(),
        Some(Verdict::Drop(_)) => "drop".into(),
        Some(Verdict::Reject(_)) => "reject".into(),
        Some(Verdict::Route(d)) => format!("route:{d}"),
    }
}

/// One edit as (operation, path, value kind, value bytes).
type Edit<'a> = (u32, &'a [u8], u32, &'a [u8]);

/// Each event's edits, sorted, so that two answers compare by content, not
/// by order.
fn edits_by_event(a: &PluginAnswer, count: usize) -> Vec<Vec<Edit<'_>>> {
    let mut out = vec![Vec::new(); count];
    for w in a.edits.chunks_exact(EDIT_WORDS) {
        let (event, op, po, pl, kind, vo, vl) = (w[0], w[1], w[2], w[3], w[4], w[5], w[6]);
        let slice = |o: u32, l: u32| {
            a.edit_data
                .get(o as usize..o as usize + l as usize)
                .unwrap_or(&[])
        };
        if let Some(e) = out.get_mut(event as usize) {
            e.push((op, slice(po, pl), kind, slice(vo, vl)));
        }
    }
    for e in &mut out {
        e.sort();
    }
    out
}

/// The paths where two events' edit lists differ.
fn differing_paths<'a>(live: &[Edit<'a>], shadow: &[Edit<'a>]) -> Vec<&'a [u8]> {
    fn index<'e, 'a>(edits: &'e [Edit<'a>]) -> HashMap<&'a [u8], Vec<&'e Edit<'a>>> {
        let mut m: HashMap<&'a [u8], Vec<&'e Edit<'a>>> = HashMap::new();
        for e in edits {
            m.entry(e.1).or_default().push(e);
        }
        m
    }
    let (l, s) = (index(live), index(shadow));
    let mut paths: Vec<&[u8]> = l
        .keys()
        .chain(s.keys())
        .copied()
        .filter(|p| l.get(p) != s.get(p))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

impl ShadowStats {
    /// Compare the shadow's answer with the live one for a batch of `count`
    /// events, and count what differs.
    pub fn compare(&self, live: &PluginAnswer, shadow: &PluginAnswer, count: usize) {
        fn verdicts(a: &PluginAnswer, count: usize) -> Vec<Option<&Verdict>> {
            let mut v: Vec<Option<&Verdict>> = vec![None; count];
            for (i, verdict) in &a.outcomes {
                if let Some(slot) = v.get_mut(*i as usize) {
                    *slot = Some(verdict);
                }
            }
            v
        }
        let (lv, sv) = (verdicts(live, count), verdicts(shadow, count));
        let (le, se) = (edits_by_event(live, count), edits_by_event(shadow, count));
        let (mut verdict_diffs, mut edit_diffs) = (0, 0);
        for i in 0..count {
            let (a, b) = (kind(lv[i]), kind(sv[i]));
            if a != b {
                verdict_diffs += 1;
                bump(&self.verdicts, &format!("{a}->{b}"));
            }
            // Edits of an event either side drops or rejects do not matter.
            let removed =
                |v: Option<&Verdict>| matches!(v, Some(Verdict::Drop(_) | Verdict::Reject(_)));
            if removed(lv[i]) || removed(sv[i]) {
                continue;
            }
            if le[i] != se[i] {
                edit_diffs += 1;
                for p in differing_paths(&le[i], &se[i]) {
                    bump(&self.paths, &String::from_utf8_lossy(p));
                }
            }
        }
        self.verdict_diffs.inc_by(verdict_diffs);
        self.edit_diffs.inc_by(edit_diffs);
    }
}

impl Shadow {
    /// Run the shadow on the batch the live plugin just answered (in
    /// `live_took`), compare, and count. Never fails: a fault is counted.
    pub fn run(
        &self,
        batch: &EncodedBatch,
        count: usize,
        live: &PluginAnswer,
        live_took: std::time::Duration,
    ) {
        let s = &self.stats;
        s.batches.inc();
        s.events.inc_by(count as u64);
        s.live_seconds.inc_by(live_took.as_secs_f64());
        let started = Instant::now();
        let answer = self
            .runtime
            .process(batch)
            .and_then(|a| super::check_answer(a, count));
        s.shadow_seconds.inc_by(started.elapsed().as_secs_f64());
        match answer {
            Ok(a) => s.compare(live, &a, count),
            Err(fault) => {
                s.faults.inc();
                tracing::debug!(shadow = %self.runtime.name, error = %fault.message, "shadow plugin faulted; the live answer stands");
                *s.last_fault.lock().expect("shadow stats") = Some(fault.message);
            }
        }
    }

    pub fn status(&self, live: &str) -> ShadowStatus {
        self.stats
            .status(&self.runtime.name, &self.runtime.sha256, live)
    }
}

impl ShadowStats {
    pub fn status(&self, name: &str, sha256: &str, live: &str) -> ShadowStatus {
        ShadowStatus {
            name: name.to_string(),
            shadows: live.to_string(),
            sha256: sha256.to_string(),
            batches: self.batches.get(),
            events: self.events.get(),
            verdict_differs: self.verdict_diffs.get(),
            edits_differ: self.edit_diffs.get(),
            verdict_changes: self.verdicts.lock().expect("shadow stats").clone(),
            edit_paths: self.paths.lock().expect("shadow stats").clone(),
            faults: self.faults.get(),
            last_fault: self.last_fault.lock().expect("shadow stats").clone(),
            shadow_seconds: self.shadow_seconds.get(),
            live_seconds: self.live_seconds.get(),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(outcomes: Vec<(u32, Verdict)>, edits: &[(u32, u32, &str, &str)]) -> PluginAnswer {
        let mut words = Vec::new();
        let mut data = Vec::new();
        for (event, op, path, value) in edits {
            let po = data.len() as u32;
            data.extend_from_slice(path.as_bytes());
            let vo = data.len() as u32;
            data.extend_from_slice(value.as_bytes());
            words.extend_from_slice(&[
                *event,
                *op,
                po,
                path.len() as u32,
                3,
                vo,
                value.len() as u32,
            ]);
        }
        PluginAnswer {
            outcomes,
            edits: words,
            edit_data: data,
        }
    }

    #[test]
    fn counts_differing_verdicts_and_edits_by_kind_and_path_never_by_value() {
        let s = ShadowStats::default();
        let live = answer(
            vec![(2, Verdict::Drop("debug".into()))],
            &[
                (0, 1, "message", "[email]"),
                (1, 1, "b", "x"),
                (1, 1, "a", "y"),
            ],
        );
        // Same edits in another order for event 1, another value for event
        // 0, keeps event 2 and rejects event 3.
        let shadow = answer(
            vec![(3, Verdict::Reject("bad".into()))],
            &[
                (1, 1, "a", "y"),
                (1, 1, "b", "x"),
                (0, 1, "message", "[redacted]"),
                (0, 1, "ip", "[ip]"),
            ],
        );
        s.compare(&live, &shadow, 4);
        let st = s.status("cand", "00", "live");
        assert_eq!((st.verdict_differs, st.edits_differ), (2, 1));
        assert_eq!(st.verdict_changes["drop->keep"], 1);
        assert_eq!(st.verdict_changes["keep->reject"], 1);
        assert_eq!(
            st.edit_paths,
            BTreeMap::from([("ip".to_string(), 1), ("message".to_string(), 1)])
        );
        let text = serde_json::to_string(&st).unwrap();
        assert!(
            !text.contains("[redacted]") && !text.contains("[email]"),
            "{text}"
        );
    }
}
