//! The plugin chain: runs batches of events through the plugins in order and
//! decides what becomes of each event.
//!
//! A [`Chain`] is immutable; reloads build a new one and swap it in
//! ([`registry::Registry`]), so a batch runs wholly on one chain. The batch is
//! encoded to the flat layout once and stays in it: a plugin's edits are
//! applied to the leaves of the events it edited (`flat::Rewriter`), the
//! untouched events' bytes are copied, and an edited event leaves the chain
//! as leaves ([`Kept::Flat`]) that the sinks' JSON line is written from. An
//! event no plugin edited leaves as it came in: the value, or the leaves of
//! a body ingest read straight into the layout ([`Events::Flat`]).

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
use wraith_event::flat::{self, BatchView, Edits, Rewriter};

/// The destination of events no plugin routed.
pub const DEFAULT_DESTINATION: &str = "events";

/// The events of a batch as they reach the chain.
#[derive(Debug, Clone)]
pub enum Events {
    /// As JSON values (the general route of ingest, OTLP, the envelope).
    Values(Vec<Value>),
    /// Already in the flat layout: a body read straight into it
    /// (`wraith_event::body`), which the chain runs on as it is.
    Flat(FlatBatch),
}

impl From<Vec<Value>> for Events {
    fn from(events: Vec<Value>) -> Self {
        Events::Values(events)
    }
}

impl Events {
    /// Number of events.
    pub fn len(&self) -> usize {
        match self {
            Events::Values(v) => v.len(),
            Events::Flat(b) => b.len(),
        }
    }

    /// Whether there is no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Store it at `destination`.
    Keep { event: Kept, destination: String },
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

/// A kept event: the value it came in as, or its leaves in the chain's last
/// batch, once a plugin edited it or when it came in as leaves (never
/// rebuilt as a JSON value on the way to the sinks).
#[derive(Debug, Clone)]
pub enum Kept {
    Value(Value),
    Flat { batch: Arc<FlatBatch>, index: usize },
}

impl Kept {
    /// The event as a JSON value.
    pub fn into_value(self) -> Value {
        match self {
            Kept::Value(v) => v,
            Kept::Flat { batch, index } => flat::to_value(&batch.event(index)),
        }
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.clone().into_value() == other.clone().into_value()
    }
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
    pub fn run(&self, events: impl Into<Events>) -> Vec<Disposition> {
        match events.into() {
            Events::Values(events) => {
                let mut out = Vec::with_capacity(events.len());
                let mut events = events.into_iter();
                loop {
                    let chunk: Vec<Value> = events.by_ref().take(self.max_batch).collect();
                    if chunk.is_empty() {
                        break;
                    }
                    out.extend(self.run_batch(Events::Values(chunk)));
                }
                out
            }
            Events::Flat(batch) if batch.len() <= self.max_batch => {
                self.run_batch(Events::Flat(batch))
            }
            Events::Flat(batch) => {
                let n = batch.len();
                let mut out = Vec::with_capacity(n);
                for start in (0..n).step_by(self.max_batch) {
                    let end = (start + self.max_batch).min(n);
                    let mut part = FlatBatch::with_capacity(end - start);
                    for i in start..end {
                        part.push_copied(&batch.data, &batch.leaves, &batch.events, i);
                    }
                    out.extend(self.run_batch(Events::Flat(part)));
                }
                out
            }
        }
    }

    fn run_batch(&self, events: Events) -> Vec<Disposition> {
        self.run_batch_noting_faults(events).0
    }

    /// [`Chain::run`] on one batch, also returning the faults that the
    /// chain passed over (`on_error = "pass"`): plugin and message.
    fn run_batch_noting_faults(&self, events: Events) -> (Vec<Disposition>, Vec<(String, String)>) {
        let n = events.len();
        let mut result: Vec<Option<Disposition>> = vec![None; n];
        // Values are encoded when the first plugin needs them; a flat batch
        // is the first plugin's batch as it is, and its events are their
        // leaves (as if edited) from the start.
        let (values, flat, mut current) = match events {
            Events::Values(v) => (v, vec![false; n], Current::Unencoded),
            Events::Flat(b) => (
                vec![Value::Null; n],
                vec![true; n],
                Current::Encoded(EncodedBatch::from(b)),
            ),
        };
        // The events still travelling, with their original positions.
        let mut live = Live {
            index: (0..n).collect(),
            #[cfg(debug_assertions)]
            mirror: match &current {
                Current::Encoded(b) => {
                    let (data, leaves, words) = b.parts();
                    let view = BatchView::new(data, leaves, words);
                    (0..n).map(|i| flat::to_value(&view.event(i))).collect()
                }
                _ => values.clone(),
            },
            flat,
            events: values,
            destination: vec![None; n],
            last_link: false,
            passed_faults: Vec::new(),
        };
        for (k, link) in self.links.iter().enumerate() {
            if live.events.is_empty() {
                break;
            }
            let last_link = k + 1 == self.links.len();
            let plugin = &link.runtime;
            let name = plugin.name.as_str();
            let count = live.events.len();
            let batch = current.take(&live);
            if plugin.is_quarantined() {
                plugin.metrics.outcome(PluginOutcome::r#in, count);
                match link.on_error {
                    FailurePolicy::Pass => {
                        plugin.metrics.outcome(PluginOutcome::passed, count);
                        live.passed_faults.push((
                            name.to_string(),
                            "plugin is quarantined after repeated faults".into(),
                        ));
                        current = Current::Encoded(batch);
                        continue;
                    }
                    FailurePolicy::DeadLetter => {
                        plugin.metrics.outcome(PluginOutcome::faulted, count);
                        live.dead_letter_all(
                            &mut result,
                            &batch,
                            name,
                            DeadLetterKind::Quarantined,
                            "plugin is quarantined after repeated faults",
                        );
                        break;
                    }
                }
            }
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
                && let Some((mut merged, found)) = isolate(plugin, &batch)
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
            live.last_link = last_link;
            let applied = answer.and_then(|answer| {
                self.apply(plugin, answer, &batch, &mut live, &mut result, &poison)
            });
            match applied {
                Ok(change) => {
                    plugin.record_success();
                    current = match change {
                        Change::None => Current::Encoded(batch),
                        Change::Edited(next) => Current::Encoded(next),
                        Change::Final(next, slots) => Current::Final(next, slots),
                        // The next plugin's batch is built when there is
                        // one.
                        Change::Removed(keep) => Current::Carried(batch, keep),
                    };
                }
                Err(fault) => {
                    if self.on_fault(link, &fault, &batch, &mut live, &mut result) {
                        current = Current::Encoded(batch);
                    } else {
                        break;
                    }
                }
            }
        }
        // Edited events leave as leaves of the last batch.
        let (last, slots) = match current {
            Current::Final(batch, slots) => (Some(Arc::new(FlatBatch::from(batch))), slots),
            mut current if live.flat.iter().any(|&f| f) => (
                Some(Arc::new(FlatBatch::from(current.take(&live)))),
                (0..live.flat.len()).collect(),
            ),
            _ => (None, Vec::new()),
        };
        for (k, ((i, event), dest)) in live
            .index
            .into_iter()
            .zip(live.events)
            .zip(live.destination)
            .enumerate()
        {
            let event = match &last {
                Some(batch) if live.flat[k] => Kept::Flat {
                    batch: batch.clone(),
                    index: slots[k],
                },
                _ => Kept::Value(event),
            };
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

    /// Apply a checked answer to the batch the plugin saw. Edits are
    /// applied to the edited events' leaves, giving the next batch; events
    /// dropped or rejected leave it.
    fn apply(
        &self,
        plugin: &PluginRuntime,
        answer: PluginAnswer,
        batch: &EncodedBatch,
        live: &mut Live,
        result: &mut [Option<Disposition>],
        poison: &[usize],
    ) -> Result<Change, Fault> {
        let last_link = live.last_link;
        let name = plugin.name.as_str();
        let edits = if answer.edits.is_empty() {
            None
        } else {
            Some(
                Edits::check(&answer.edits, &answer.edit_data, live.events.len()).map_err(|e| {
                    Fault {
                        reason: FaultReason::malformed,
                        message: format!("malformed answer: {e}"),
                    }
                })?,
            )
        };
        let (data, leaves, words) = batch.parts();
        let view = BatchView::lazy(data, leaves, words);
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
                    // Dead-lettered as the plugin left it, edits included.
                    let mut event = live.take_value(i, &view);
                    if let Some(e) = &edits {
                        e.apply_event(i, &mut event);
                    }
                    result[live.index[i]] = Some(Disposition::DeadLetter {
                        event,
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
        let kept = total - dropped - rejected - faulted;
        let kept_ok = kept - passed;
        plugin
            .stats
            .kept
            .fetch_add(kept_ok as u64, Ordering::Relaxed);
        plugin.metrics.outcome(PluginOutcome::dropped, dropped);
        plugin.metrics.outcome(PluginOutcome::rejected, rejected);
        plugin
            .metrics
            .outcome(PluginOutcome::faulted, faulted + passed);
        plugin.metrics.outcome(PluginOutcome::passed, passed);
        plugin.metrics.outcome(PluginOutcome::kept, kept_ok);
        #[cfg(debug_assertions)]
        if let Some(e) = &edits {
            for (i, event) in live.mirror.iter_mut().enumerate() {
                e.apply_event(i, event);
            }
        }
        let Some(edits) = edits else {
            if kept == total {
                return Ok(Change::None);
            }
            let keep = (0..total).filter(|&i| !remove[i]).collect();
            live.retain(&remove);
            return Ok(Change::Removed(keep));
        };
        // Room for the batch as it is and what the edits add: it does not
        // grow while it is built.
        let (more_data, more_leaves) = edits.growth();
        let mut next = FlatBatch::with_room(
            data.len() + more_data,
            leaves.len() + more_leaves,
            words.len(),
        );
        let mut rewriter = Rewriter::default();
        // After the last plugin, the batch holds only the events that leave
        // as leaves: `slots` gives each event's place in it.
        let mut slots = Vec::with_capacity(if last_link { total } else { 0 });
        for (i, &removed) in remove.iter().enumerate() {
            if last_link {
                slots.push(next.len());
            }
            if removed {
                continue;
            }
            if !edits.touches(i) {
                if !last_link || live.flat[i] {
                    next.push_copied(data, leaves, words, i);
                }
                continue;
            }
            // An event the layout cannot spell (an empty key) is edited as
            // its JSON value.
            if !live.flat[i] && !flat::lossless(&live.events[i]) {
                edits.apply_event(i, &mut live.events[i]);
                if !last_link {
                    next.push_event(&live.events[i]);
                }
                continue;
            }
            match rewriter.push_edited(&mut next, &view.event(i), &edits, i) {
                Ok(()) => {
                    live.events[i] = Value::Null;
                    live.flat[i] = true;
                }
                // What the rewrite does not cover (an array element removed).
                Err(flat::Unsupported) => {
                    let mut event = live.take_value(i, &view);
                    edits.apply_event(i, &mut event);
                    if !last_link {
                        next.push_event(&event);
                    }
                    live.events[i] = event;
                    live.flat[i] = false;
                }
            }
        }
        live.retain(&remove);
        if last_link {
            let mut k = 0;
            slots.retain(|_| {
                k += 1;
                !remove[k - 1]
            });
            #[cfg(debug_assertions)]
            live.check_flat(&next);
            return Ok(Change::Final(EncodedBatch::from(next), slots));
        }
        #[cfg(debug_assertions)]
        live.check(&next);
        Ok(Change::Edited(EncodedBatch::from(next)))
    }

    /// Handle a fault per the plugin's policy. Returns whether the batch goes
    /// on (fail-open) with the events unchanged.
    fn on_fault(
        &self,
        link: &Link,
        fault: &Fault,
        batch: &EncodedBatch,
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
                live.dead_letter_all(result, batch, name, DeadLetterKind::Faulted, &fault.message);
                false
            }
        }
    }
}

/// What a plugin's answer did to the batch.
enum Change {
    /// Nothing: the next plugin gets the same batch.
    None,
    /// Events were edited: the next batch, already built.
    Edited(EncodedBatch),
    /// Events were edited by the last plugin: a batch of only the events
    /// that leave as leaves, and each event's place in it.
    Final(EncodedBatch, Vec<usize>),
    /// Events were removed only: the positions of those still travelling.
    Removed(Vec<usize>),
}

/// The batch for the events still travelling, built when a plugin needs it.
enum Current {
    /// Nothing encoded yet: the events are their values.
    Unencoded,
    Encoded(EncodedBatch),
    /// After the last plugin: the events that leave as leaves, and each
    /// event's place among them.
    Final(EncodedBatch, Vec<usize>),
    /// The batch a plugin saw, and the positions in it of the events that
    /// are still travelling.
    Carried(EncodedBatch, Vec<usize>),
}

impl Current {
    fn take(&mut self, live: &Live) -> EncodedBatch {
        let batch = match std::mem::replace(self, Current::Unencoded) {
            Current::Encoded(b) => return b,
            Current::Final(..) => unreachable!("no plugin runs after the last"),
            Current::Unencoded => FlatBatch::encode(&live.events),
            Current::Carried(previous, keep) => copied(&previous, keep.into_iter()),
        };
        #[cfg(debug_assertions)]
        live.check(&batch);
        EncodedBatch::from(batch)
    }
}

/// The events at `positions` of a batch, their bytes copied as they are.
fn copied(batch: &EncodedBatch, positions: impl ExactSizeIterator<Item = usize>) -> FlatBatch {
    let (data, leaves, words) = batch.parts();
    let mut out = FlatBatch::with_capacity(positions.len());
    for i in positions {
        out.push_copied(data, leaves, words, i);
    }
    out
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
    batch: &EncodedBatch,
) -> Option<(PluginAnswer, Vec<(usize, String)>)> {
    let n = batch.len();
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
            let part = EncodedBatch::from(copied(batch, r.clone()));
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
    /// Each event as it came in; stale (null) where `flat` says the batch
    /// holds it.
    events: Vec<Value>,
    /// Whether the event's leaves in the current batch are all there is of
    /// it: a plugin edited it, or it came in as leaves ([`Events::Flat`]).
    flat: Vec<bool>,
    /// Debug builds (the test suite's) also edit every event as a JSON
    /// value and hold each batch to a fresh encoding of those values.
    #[cfg(debug_assertions)]
    mirror: Vec<Value>,
    destination: Vec<Option<String>>,
    /// Whether the plugin whose answer is applied is the chain's last.
    last_link: bool,
    /// Faults passed over by `on_error = "pass"` (for [`Chain::trace`]).
    passed_faults: Vec<(String, String)>,
}

impl Live {
    fn retain(&mut self, remove: &[bool]) {
        fn keep<T>(v: &mut Vec<T>, remove: &[bool]) {
            let mut k = 0;
            v.retain(|_| {
                k += 1;
                !remove[k - 1]
            });
        }
        keep(&mut self.index, remove);
        keep(&mut self.events, remove);
        keep(&mut self.flat, remove);
        keep(&mut self.destination, remove);
        #[cfg(debug_assertions)]
        keep(&mut self.mirror, remove);
    }

    /// Event `i` as a JSON value, taken out (it is leaving the chain).
    fn take_value(&mut self, i: usize, batch: &BatchView<'_>) -> Value {
        if self.flat[i] {
            flat::to_value(&batch.event(i))
        } else {
            std::mem::take(&mut self.events[i])
        }
    }

    /// [`Live::check`] for a batch of the flat events only.
    #[cfg(debug_assertions)]
    fn check_flat(&self, batch: &FlatBatch) {
        let flat: Vec<&Value> = (0..self.flat.len())
            .filter(|&k| self.flat[k])
            .map(|k| &self.mirror[k])
            .collect();
        assert_eq!(
            *batch,
            FlatBatch::encode(flat),
            "the flat rewrite differs from editing the events as JSON"
        );
    }

    #[cfg(debug_assertions)]
    fn check(&self, batch: &FlatBatch) {
        assert_eq!(
            *batch,
            FlatBatch::encode(&self.mirror),
            "the flat rewrite differs from editing the events as JSON"
        );
    }

    fn dead_letter_all(
        &mut self,
        result: &mut [Option<Disposition>],
        batch: &EncodedBatch,
        plugin: &str,
        kind: DeadLetterKind,
        reason: &str,
    ) {
        let (data, leaves, words) = batch.parts();
        let view = BatchView::lazy(data, leaves, words);
        for k in 0..self.index.len() {
            let event = self.take_value(k, &view);
            result[self.index[k]] = Some(Disposition::DeadLetter {
                event,
                plugin: plugin.to_string(),
                kind,
                reason: reason.to_string(),
            });
        }
        self.index.clear();
        self.events.clear();
        self.flat.clear();
        self.destination.clear();
        #[cfg(debug_assertions)]
        self.mirror.clear();
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
