//! The plugin chain: runs batches of events through the plugins in order and
//! decides what becomes of each event.
//!
//! A [`Chain`] is immutable; reloads build a new one and swap it in
//! ([`registry::Registry`]), so a batch runs wholly on one chain. The batch is
//! encoded once; after a plugin edited or removed events, the next plugin's
//! batch copies the untouched events' bytes and re-encodes only the edited ones.

pub mod manifest;
pub mod registry;
pub mod shadow;
pub mod trace;

use crate::host::{EncodedBatch, Fault, FlatBatch, PluginAnswer, PluginRuntime, Verdict};
use crate::telemetry::{FaultReason, PluginOutcome};
use manifest::FailurePolicy;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The destination of events no plugin routed.
pub const DEFAULT_DESTINATION: &str = "events";

/// What became of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Store it at `destination`.
    Keep { event: Value, destination: String },
    /// A plugin dropped it on purpose.
    Drop { plugin: String, reason: String },
    /// It goes to the dead-letter queue.
    DeadLetter {
        event: Value,
        plugin: String,
        kind: DeadLetterKind,
        reason: String,
    },
}

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// The plugin rejected it as invalid.
    Rejected,
    /// The plugin faulted on its batch (trap, timeout, memory, malformed answer).
    Faulted,
    /// The plugin is quarantined after repeated faults.
    Quarantined,
}

impl DeadLetterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Rejected => "rejected",
            DeadLetterKind::Faulted => "faulted",
            DeadLetterKind::Quarantined => "quarantined",
        }
    }
}

/// One plugin in a chain.
pub struct Link {
    pub runtime: Arc<PluginRuntime>,
    pub on_error: FailurePolicy,
    /// Candidates that run on the same batches, compared and never applied.
    pub shadows: Vec<shadow::Shadow>,
}

/// An immutable, ordered set of plugins.
pub struct Chain {
    pub links: Vec<Link>,
    /// Increases with every reload.
    pub generation: u64,
    max_batch: usize,
}

/// Whether a destination name is acceptable: the one rule of
/// [`wraith_event::destination::check`], which the plugin SDK uses too.
pub fn valid_destination(name: &str) -> bool {
    wraith_event::destination::check(name).is_ok()
}

impl Chain {
    pub fn new(links: Vec<Link>, generation: u64, max_batch: usize) -> Self {
        Chain {
            links,
            generation,
            max_batch: max_batch.max(1),
        }
    }

    /// Run events through every plugin. CPU-bound and blocking: call it from a
    /// blocking thread. The result has one disposition per event, in order.
    pub fn run(&self, events: Vec<Value>) -> Vec<Disposition> {
        let mut out = Vec::with_capacity(events.len());
        let mut events = events.into_iter();
        loop {
            let chunk: Vec<Value> = events.by_ref().take(self.max_batch).collect();
            if chunk.is_empty() {
                break;
            }
            out.extend(self.run_batch(chunk));
        }
        out
    }

    fn run_batch(&self, events: Vec<Value>) -> Vec<Disposition> {
        self.run_batch_noting_faults(events).0
    }

    /// [`Chain::run`] on one batch, also returning the faults that the
    /// chain passed over (`on_error = "pass"`): plugin and message.
    fn run_batch_noting_faults(
        &self,
        events: Vec<Value>,
    ) -> (Vec<Disposition>, Vec<(String, String)>) {
        let n = events.len();
        let mut result: Vec<Option<Disposition>> = vec![None; n];
        // The events still travelling, with their original positions.
        let mut live = Live {
            index: (0..n).collect(),
            events,
            destination: vec![None; n],
            passed_faults: Vec::new(),
        };
        let mut encoded: Option<EncodedBatch> = None;
        // The batch a plugin that changed events saw, and what became of
        // each event still travelling (see `next_batch`).
        let mut carried: Option<(EncodedBatch, Vec<(usize, bool)>)> = None;
        for link in &self.links {
            if live.events.is_empty() {
                break;
            }
            let plugin = &link.runtime;
            let name = plugin.name.as_str();
            let count = live.events.len();
            if plugin.is_quarantined() {
                plugin.metrics.outcome(PluginOutcome::r#in, count);
                match link.on_error {
                    FailurePolicy::Pass => {
                        plugin.metrics.outcome(PluginOutcome::passed, count);
                        live.passed_faults.push((
                            name.to_string(),
                            "plugin is quarantined after repeated faults".into(),
                        ));
                        continue;
                    }
                    FailurePolicy::DeadLetter => {
                        plugin.metrics.outcome(PluginOutcome::faulted, count);
                        live.dead_letter_all(
                            &mut result,
                            name,
                            DeadLetterKind::Quarantined,
                            "plugin is quarantined after repeated faults",
                        );
                        break;
                    }
                }
            }
            let batch = match (encoded.take(), carried.take()) {
                (Some(b), _) => b,
                (None, Some((previous, carry))) => next_batch(&previous, &carry, &live.events),
                (None, None) => EncodedBatch::from(FlatBatch::encode(&live.events)),
            };
            plugin
                .stats
                .events_in
                .fetch_add(count as u64, Ordering::Relaxed);
            plugin.metrics.outcome(PluginOutcome::r#in, count);
            let started = std::time::Instant::now();
            let mut answer = plugin.process(&batch).and_then(|a| check_answer(a, count));
            if let Ok(live) = &answer {
                let took = started.elapsed();
                for s in &link.shadows {
                    s.run(&batch, count, live, took);
                }
            }
            // A trap, timeout or memory fault on a batch of several events:
            // find the events that fault on their own, and answer for the
            // rest (see `isolate`).
            let mut poison: Vec<usize> = Vec::new();
            if let Err(fault) = &answer
                && count > 1
                && matches!(
                    fault.reason,
                    FaultReason::trap | FaultReason::timeout | FaultReason::memory
                )
                && let Some((mut merged, found)) = isolate(plugin, &live.events)
            {
                plugin.record_fault(fault);
                plugin.metrics.poison_events.inc_by(found.len() as u64);
                tracing::warn!(plugin = name, reason = ?fault.reason, events = count, poison = found.len(), error = %fault.message, "plugin faulted; the events that fault on their own were isolated");
                for (i, message) in &found {
                    match link.on_error {
                        FailurePolicy::DeadLetter => merged.outcomes.push((
                            *i as u32,
                            Verdict::Reject(format!(
                                "{message} (this event faults the plugin on its own; the rest of its batch went on)"
                            )),
                        )),
                        // Fail-open: it goes on unprocessed, as a whole
                        // faulting batch would.
                        FailurePolicy::Pass => live.passed_faults.push((name.to_string(), message.clone())),
                    }
                }
                poison = found.into_iter().map(|(i, _)| i).collect();
                answer = Ok(merged);
            }
            match answer {
                Ok(answer) => {
                    let changed = self.apply(plugin, answer, &mut live, &mut result, &poison);
                    if changed.is_ok() {
                        plugin.record_success();
                    }
                    match changed {
                        Ok(None) => encoded = Some(batch),
                        // The next plugin's batch is built when there is
                        // one: the last plugin's edits need no encoding.
                        Ok(Some(carry)) => carried = Some((batch, carry)),
                        Err(fault) => {
                            if self.on_fault(link, &fault, &mut live, &mut result) {
                                encoded = Some(batch);
                            } else {
                                break;
                            }
                        }
                    }
                }
                Err(fault) => {
                    if self.on_fault(link, &fault, &mut live, &mut result) {
                        encoded = Some(batch);
                    } else {
                        break;
                    }
                }
            }
        }
        for ((i, event), dest) in live
            .index
            .into_iter()
            .zip(live.events)
            .zip(live.destination)
        {
            result[i] = Some(Disposition::Keep {
                event,
                destination: dest.unwrap_or_else(|| DEFAULT_DESTINATION.to_string()),
            });
        }
        let dispositions = result
            .into_iter()
            .map(|d| d.expect("every event has a disposition"))
            .collect();
        (dispositions, live.passed_faults)
    }

    /// Apply a checked answer. When the live events changed, returns for each
    /// event still travelling its position in the batch the plugin saw and
    /// whether it was edited (so the next plugin's batch re-encodes only
    /// those).
    fn apply(
        &self,
        plugin: &PluginRuntime,
        answer: PluginAnswer,
        live: &mut Live,
        result: &mut [Option<Disposition>],
        poison: &[usize],
    ) -> Result<Option<Vec<(usize, bool)>>, Fault> {
        let name = plugin.name.as_str();
        let any_edit = !answer.edits.is_empty();
        let edited = if any_edit {
            wraith_event::flat::apply_edits(&mut live.events, &answer.edits, &answer.edit_data)
                .map_err(|e| Fault {
                    reason: FaultReason::malformed,
                    message: format!("malformed answer: {e}"),
                })?
        } else {
            vec![false; live.events.len()]
        };
        let (mut dropped, mut rejected, mut faulted) = (0, 0, 0);
        let mut remove = vec![false; live.events.len()];
        for (i, verdict) in answer.outcomes {
            let i = i as usize;
            match verdict {
                Verdict::Route(dest) => live.destination[i] = Some(dest),
                Verdict::Drop(reason) => {
                    dropped += 1;
                    remove[i] = true;
                    result[live.index[i]] = Some(Disposition::Drop {
                        plugin: name.to_string(),
                        reason,
                    });
                }
                Verdict::Reject(reason) => {
                    // An isolated poison event is a fault, not a rejection.
                    let kind = if poison.contains(&i) {
                        faulted += 1;
                        DeadLetterKind::Faulted
                    } else {
                        rejected += 1;
                        DeadLetterKind::Rejected
                    };
                    remove[i] = true;
                    result[live.index[i]] = Some(Disposition::DeadLetter {
                        event: std::mem::take(&mut live.events[i]),
                        plugin: name.to_string(),
                        kind,
                        reason,
                    });
                }
            }
        }
        let total = live.events.len();
        plugin
            .stats
            .dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
        plugin
            .stats
            .rejected
            .fetch_add(rejected as u64, Ordering::Relaxed);
        // Fail-open poison events go on unprocessed: passed, not kept.
        let passed = if faulted == 0 { poison.len() } else { 0 };
        plugin
            .stats
            .faulted
            .fetch_add((faulted + passed) as u64, Ordering::Relaxed);
        let kept = total - dropped - rejected - faulted - passed;
        plugin.stats.kept.fetch_add(kept as u64, Ordering::Relaxed);
        plugin.metrics.outcome(PluginOutcome::dropped, dropped);
        plugin.metrics.outcome(PluginOutcome::rejected, rejected);
        plugin
            .metrics
            .outcome(PluginOutcome::faulted, faulted + passed);
        plugin.metrics.outcome(PluginOutcome::passed, passed);
        plugin.metrics.outcome(PluginOutcome::kept, kept);
        let removed = dropped + rejected + faulted;
        if !any_edit && removed == 0 {
            return Ok(None);
        }
        let carry = (0..remove.len())
            .filter(|&i| !remove[i])
            .map(|i| (i, edited[i]))
            .collect();
        if removed > 0 {
            live.retain(&remove);
        }
        Ok(Some(carry))
    }

    /// Handle a fault per the plugin's policy. Returns whether the batch goes
    /// on (fail-open) with the events unchanged.
    fn on_fault(
        &self,
        link: &Link,
        fault: &Fault,
        live: &mut Live,
        result: &mut [Option<Disposition>],
    ) -> bool {
        let plugin = &link.runtime;
        let name = plugin.name.as_str();
        let count = live.events.len();
        plugin.record_fault(fault);
        plugin
            .stats
            .faulted
            .fetch_add(count as u64, Ordering::Relaxed);
        plugin.metrics.outcome(PluginOutcome::faulted, count);
        match link.on_error {
            FailurePolicy::Pass => {
                tracing::warn!(plugin = name, reason = ?fault.reason, events = count, error = %fault.message, "plugin faulted; passing the batch on unchanged (on_error = \"pass\")");
                plugin.metrics.outcome(PluginOutcome::passed, count);
                live.passed_faults
                    .push((name.to_string(), fault.message.clone()));
                true
            }
            FailurePolicy::DeadLetter => {
                tracing::warn!(plugin = name, reason = ?fault.reason, events = count, error = %fault.message, "plugin faulted; batch sent to the dead-letter queue");
                live.dead_letter_all(result, name, DeadLetterKind::Faulted, &fault.message);
                false
            }
        }
    }
}

/// The batch for the next plugin after one that edited or removed events:
/// the untouched events' bytes are copied from the batch it saw, only the
/// edited ones are encoded again. `carry` gives, per event still
/// travelling, its position in that batch and whether it was edited.
fn next_batch(previous: &EncodedBatch, carry: &[(usize, bool)], events: &[Value]) -> EncodedBatch {
    let (data, leaves, words) = previous.parts();
    let mut next = FlatBatch::with_capacity(carry.len());
    for (event, &(old, edited)) in events.iter().zip(carry) {
        if edited {
            next.push_event(event);
        } else {
            next.push_copied(data, leaves, words, old);
        }
    }
    // Debug builds (the test suite's) hold the copy to what a fresh
    // encoding would give.
    debug_assert_eq!(next, FlatBatch::encode(events));
    EncodedBatch::from(next)
}

/// After a fault on a batch of several events, run the plugin on parts of
/// it (halves, then halves of the parts that fault; each call on a fresh
/// instance, since a faulting one is thrown away) until the events that
/// fault on their own are found. Returns the answers for every other event,
/// merged as one answer for the whole batch, and the faulting events with
/// their faults.
///
/// Bounded: at most `4·⌈log₂ n⌉ + 4` extra calls, and a plugin that faults
/// on every part two levels down is taken to fault on everything (6 extra
/// calls); `None` then, and the whole batch is handled as faulted.
fn isolate(
    plugin: &PluginRuntime,
    events: &[Value],
) -> Option<(PluginAnswer, Vec<(usize, String)>)> {
    let n = events.len();
    let budget = 4 * (usize::BITS - (n - 1).leading_zeros()) as usize + 4;
    let halves = |r: std::ops::Range<usize>| {
        let mid = r.start + r.len() / 2;
        [r.start..mid, mid..r.end]
    };
    let mut merged = PluginAnswer::default();
    let mut poison = Vec::new();
    let mut level: Vec<std::ops::Range<usize>> = halves(0..n).to_vec();
    let mut calls = 0;
    let mut depth = 0;
    while !level.is_empty() {
        depth += 1;
        let mut next = Vec::new();
        let mut any_ok = false;
        for r in level {
            if calls == budget {
                plugin.metrics.isolation_calls.inc_by(calls as u64);
                return None;
            }
            calls += 1;
            let part = EncodedBatch::from(FlatBatch::encode(&events[r.clone()]));
            match plugin.process(&part).and_then(|a| check_answer(a, r.len())) {
                Ok(a) => {
                    any_ok = true;
                    merge_answer(&mut merged, a, r.start);
                }
                Err(f) if r.len() == 1 => poison.push((r.start, f.message)),
                Err(_) => next.extend(halves(r)),
            }
        }
        if !any_ok && depth >= 2 {
            plugin.metrics.isolation_calls.inc_by(calls as u64);
            return None;
        }
        level = next;
    }
    plugin.metrics.isolation_calls.inc_by(calls as u64);
    poison.sort();
    Some((merged, poison))
}

/// Append the answer for the events `offset..` of a batch to `into`, as
/// positions and edit offsets of the whole batch.
fn merge_answer(into: &mut PluginAnswer, part: PluginAnswer, offset: usize) {
    let base = into.edit_data.len() as u32;
    into.outcomes.extend(
        part.outcomes
            .into_iter()
            .map(|(i, v)| (i + offset as u32, v)),
    );
    for w in part.edits.chunks_exact(wraith_event::flat::EDIT_WORDS) {
        into.edits.extend_from_slice(&[
            w[0] + offset as u32,
            w[1],
            w[2] + base,
            w[3],
            w[4],
            w[5] + base,
            w[6],
        ]);
    }
    into.edit_data.extend_from_slice(&part.edit_data);
}

/// Check the shape of an answer against the batch it answers.
pub(crate) fn check_answer(answer: PluginAnswer, count: usize) -> Result<PluginAnswer, Fault> {
    let malformed = |message: String| Fault {
        reason: FaultReason::malformed,
        message: format!("malformed answer: {message}"),
    };
    let mut seen = vec![false; count];
    for (i, verdict) in &answer.outcomes {
        let i = *i as usize;
        if i >= count {
            return Err(malformed(format!(
                "verdict for event {i}, but the batch has {count} events"
            )));
        }
        if std::mem::replace(&mut seen[i], true) {
            return Err(malformed(format!("two verdicts for event {i}")));
        }
        if let Verdict::Route(dest) = verdict
            && !valid_destination(dest)
        {
            return Err(malformed(format!(
                "route to {:?}: destinations are [a-z0-9_-], 1 to 64 bytes, and not `dlq`",
                dest.chars().take(80).collect::<String>()
            )));
        }
    }
    Ok(answer)
}

struct Live {
    index: Vec<usize>,
    events: Vec<Value>,
    destination: Vec<Option<String>>,
    /// Faults passed over by `on_error = "pass"` (for [`Chain::trace`]).
    passed_faults: Vec<(String, String)>,
}

impl Live {
    fn retain(&mut self, remove: &[bool]) {
        let mut k = 0;
        self.index.retain(|_| {
            k += 1;
            !remove[k - 1]
        });
        k = 0;
        self.events.retain(|_| {
            k += 1;
            !remove[k - 1]
        });
        k = 0;
        self.destination.retain(|_| {
            k += 1;
            !remove[k - 1]
        });
    }

    fn dead_letter_all(
        &mut self,
        result: &mut [Option<Disposition>],
        plugin: &str,
        kind: DeadLetterKind,
        reason: &str,
    ) {
        for (i, event) in self.index.drain(..).zip(self.events.drain(..)) {
            result[i] = Some(Disposition::DeadLetter {
                event,
                plugin: plugin.to_string(),
                kind,
                reason: reason.to_string(),
            });
        }
        self.destination.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wraith_event::flat::{EditBuffer, ValueRef};

    fn part(edits: &[(u32, &str, &str)], outcomes: Vec<(u32, Verdict)>) -> PluginAnswer {
        let mut b = EditBuffer::default();
        for (event, path, value) in edits {
            b.set(*event, path, ValueRef::String(value));
        }
        PluginAnswer {
            outcomes,
            edits: b.edits,
            edit_data: b.data,
        }
    }

    #[test]
    fn merged_part_answers_address_the_whole_batch() {
        let mut merged = PluginAnswer::default();
        merge_answer(
            &mut merged,
            part(&[(1, "a", "first")], vec![(0, Verdict::Drop("x".into()))]),
            0,
        );
        merge_answer(
            &mut merged,
            part(
                &[(0, "b", "second"), (1, "c", "third")],
                vec![(1, Verdict::Route("r".into()))],
            ),
            2,
        );
        let mut events = vec![json!({}), json!({}), json!({}), json!({})];
        let changed =
            wraith_event::flat::apply_edits(&mut events, &merged.edits, &merged.edit_data).unwrap();
        assert_eq!(changed, [false, true, true, true]);
        assert_eq!(events[1], json!({"a": "first"}));
        assert_eq!(events[2], json!({"b": "second"}));
        assert_eq!(events[3], json!({"c": "third"}));
        assert_eq!(
            merged.outcomes,
            vec![
                (0, Verdict::Drop("x".into())),
                (3, Verdict::Route("r".into()))
            ]
        );
    }
}
