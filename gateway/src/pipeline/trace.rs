//! One event through the chain, plugin by plugin: what each plugin answered
//! and which paths it changed. The status page's playground and
//! `gateway check --sample` both show this, so they cannot disagree.
//!
//! Each plugin runs as a one-link chain on the event the previous plugin
//! left, so a step sees exactly what it would see in the live chain (same
//! instances, limits, fault policy and quarantine). Plugin counters count
//! these runs like any other.

use super::manifest::FailurePolicy;
use super::{Chain, DeadLetterKind, Disposition, Link};
use crate::host::PluginRuntime;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use wraith_event::path::{push_index, push_key};

/// What the chain did to one event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trace {
    /// The event as the chain received it (after ingest's checks).
    pub before: Value,
    /// One step per plugin the event reached, in chain order.
    pub steps: Vec<Step>,
    /// The end result: `keep`, `drop` or `dead_letter`.
    pub verdict: &'static str,
    /// Where a kept event is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Why it was dropped or dead-lettered, and by which plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The stored event (kept events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// One plugin's answer for the event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    pub plugin: String,
    /// `keep`, `route`, `drop`, `reject`, `fault` (a fault with
    /// `on_error = "pass"` shows as `fault` and the event goes on unchanged).
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The paths this plugin set or removed (values are in `after`).
    pub edits: Vec<EditedPath>,
    /// The answers of the plugin's shadows on the same input (compared
    /// in the live chain, never applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<Step>,
}

/// A path a plugin changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EditedPath {
    /// `set` (added or changed) or `remove`.
    pub op: &'static str,
    pub path: String,
}

/// Where the walk goes after one plugin.
enum Next {
    /// On, with the event as the plugin left it (and where it routed it).
    On(Value, Option<String>),
    /// The event stops here: `drop` or `dead_letter`.
    Stop(&'static str, String),
}

impl Chain {
    /// Run one plugin alone on `input`, as the live chain would.
    fn step(
        &self,
        runtime: &Arc<PluginRuntime>,
        on_error: FailurePolicy,
        input: &Value,
    ) -> (Step, Next) {
        let one = Chain::new(
            vec![Link {
                runtime: runtime.clone(),
                on_error,
                shadows: Vec::new(),
            }],
            self.generation,
            1,
        );
        let (mut d, passed) =
            one.run_batch_noting_faults(super::Events::Values(vec![input.clone()]));
        let plugin = runtime.name.clone();
        let step = |verdict, reason, destination, edits| Step {
            plugin: plugin.clone(),
            verdict,
            reason,
            destination,
            edits,
            shadows: Vec::new(),
        };
        match d.pop().expect("one in, one out") {
            Disposition::Keep { event, destination } => {
                let event = event.into_value();
                let fault = passed.into_iter().next().map(|(_, m)| m);
                let routed = destination != super::DEFAULT_DESTINATION;
                let mut edits = Vec::new();
                diff(input, &event, &mut String::new(), &mut edits);
                let verdict = match (&fault, routed) {
                    (Some(_), _) => "fault",
                    (None, true) => "route",
                    (None, false) => "keep",
                };
                (
                    step(verdict, fault, routed.then(|| destination.clone()), edits),
                    Next::On(event, routed.then_some(destination)),
                )
            }
            Disposition::Drop { reason, .. } => (
                step("drop", Some(reason.clone()), None, Vec::new()),
                Next::Stop("drop", reason),
            ),
            Disposition::DeadLetter { kind, reason, .. } => (
                step(
                    match kind {
                        DeadLetterKind::Rejected => "reject",
                        DeadLetterKind::Faulted | DeadLetterKind::Quarantined => "fault",
                    },
                    Some(reason.clone()),
                    None,
                    Vec::new(),
                ),
                Next::Stop("dead_letter", reason),
            ),
        }
    }

    /// Run one event through the chain, a plugin at a time, and report each
    /// plugin's verdict and edits, and beside it each of its shadows'
    /// answers on the same input. Blocking, like [`Chain::run`].
    pub fn trace(&self, event: Value) -> Trace {
        let before = event.clone();
        let mut current = event;
        let mut steps = Vec::with_capacity(self.links.len());
        let mut destination: Option<String> = None;
        for link in &self.links {
            let (mut step, next) = self.step(&link.runtime, link.on_error, &current);
            step.shadows = link
                .shadows
                .iter()
                .map(|s| self.step(&s.runtime, FailurePolicy::Pass, &current).0)
                .collect();
            let plugin = step.plugin.clone();
            steps.push(step);
            match next {
                Next::On(event, routed) => {
                    if routed.is_some() {
                        destination = routed;
                    }
                    current = event;
                }
                Next::Stop(verdict, reason) => {
                    return Trace {
                        before,
                        steps,
                        verdict,
                        destination: None,
                        reason: Some(reason),
                        plugin: Some(plugin),
                        after: None,
                    };
                }
            }
        }
        Trace {
            before,
            steps,
            verdict: "keep",
            destination: Some(destination.unwrap_or_else(|| super::DEFAULT_DESTINATION.into())),
            reason: None,
            plugin: None,
            after: Some(current),
        }
    }
}

/// The paths where `after` differs from `before`, as the smallest set of
/// `set`/`remove` operations on objects' keys (an array that changed is one
/// `set` of the whole array).
fn diff(before: &Value, after: &Value, path: &mut String, out: &mut Vec<EditedPath>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, bv) in b {
                let len = path.len();
                push_key(path, k);
                match a.get(k) {
                    None => out.push(EditedPath {
                        op: "remove",
                        path: path.clone(),
                    }),
                    Some(av) => diff(bv, av, path, out),
                }
                path.truncate(len);
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                let len = path.len();
                push_key(path, k);
                out.push(EditedPath {
                    op: "set",
                    path: path.clone(),
                });
                path.truncate(len);
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                let len = path.len();
                push_index(path, i);
                diff(bv, av, path, out);
                path.truncate(len);
            }
        }
        (b, a) if b == a => {}
        _ => out.push(EditedPath {
            op: "set",
            path: path.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(b: Value, a: Value) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        diff(&b, &a, &mut String::new(), &mut out);
        out.into_iter().map(|e| (e.op, e.path)).collect()
    }

    #[test]
    fn diff_names_each_changed_path_once() {
        let b =
            json!({"a": 1, "m": "ada@example.org", "c": {"os": "linux", "x": [1, 2]}, "k.y": 1});
        let a = json!({"a": 1, "m": "[email]", "c": {"os": "linux", "x": [1, 3]}, "n": true});
        assert_eq!(
            paths(b, a),
            vec![
                ("set", "m".to_string()),
                ("set", "c.x[1]".to_string()),
                ("remove", "k\\.y".to_string()),
                ("set", "n".to_string()),
            ]
        );
    }

    #[test]
    fn diff_of_equal_events_is_empty_and_a_resized_array_is_one_set() {
        let e = json!({"a": [1, 2], "b": {"c": null}});
        assert!(paths(e.clone(), e).is_empty());
        assert_eq!(
            paths(json!({"a": [1, 2]}), json!({"a": [1]})),
            vec![("set", "a".to_string())]
        );
    }
}
