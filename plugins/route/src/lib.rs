//! Wraith plugin: route, drop or sample events by ordered rules; the first
//! rule whose condition matches decides.
//!
//! See the crate's README for the config and behaviour.

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use wraith_plugin::{Config, ConfigError, Event, Plugin, ValueRef, Verdict, path};

/// The field sampling is keyed on.
pub const EVENT_ID: &str = "event_id";

/// The destination of dead-lettered events, which rules may not route to.
pub const DLQ: &str = wraith_plugin::destination::DLQ;

/// The plugin's config, as the operator writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub rules: Vec<RuleSettings>,
    /// What happens when no rule matches; `"keep"` when absent.
    #[serde(default)]
    pub default: Option<Value>,
}

/// One rule as written; checked by [`Router::new`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    pub when: Value,
    pub then: Value,
}

/// A condition on an event.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The leaf at `field` equals `value` (numbers by value; a missing field
    /// equals nothing, not even `null`).
    Equals { field: String, value: Value },
    /// The leaf at `field` equals one of `values`.
    In { field: String, values: Vec<Value> },
    /// The string at `field` starts with `prefix`.
    Prefix { field: String, prefix: String },
    /// The string at `field` contains a match of `regex`.
    Regex { field: String, regex: Regex },
    /// Whether `field` is present (as a value, or as an object or array with
    /// anything in it) is `exists`.
    Exists { field: String, exists: bool },
    /// Every condition matches.
    All(Vec<Matcher>),
    /// At least one condition matches.
    Any(Vec<Matcher>),
    /// The condition does not match.
    Not(Box<Matcher>),
}

/// What a rule (or the default) does with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Keep the event where it was going; stop evaluating.
    Keep,
    /// Keep the event and send it to this destination.
    Route(String),
    /// Drop the event with this reason.
    Drop(String),
    /// Keep one event in `keep_one_in` (decided by the event's id), routed to
    /// `route` when given; drop the others.
    Sample {
        keep_one_in: u64,
        route: Option<String>,
    },
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub when: Matcher,
    pub then: Action,
}

/// What the plugin reads from an event to match it.
pub trait Fields {
    /// The leaf at this (canonical, escaped) path.
    fn value(&self, path: &str) -> Option<ValueRef<'_>>;
    /// Whether there is a leaf at or under this path.
    fn exists(&self, path: &str) -> bool;
}

impl Fields for Event<'_> {
    fn value(&self, path: &str) -> Option<ValueRef<'_>> {
        self.get(path)
    }

    fn exists(&self, path: &str) -> bool {
        self.get(path).is_some() || self.leaves().any(|leaf| is_under(leaf.path, path))
    }
}

/// Whether the leaf at `leaf` lies strictly under `field`.
pub fn is_under(leaf: &str, field: &str) -> bool {
    leaf.strip_prefix(field)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Whether `name` is an acceptable destination (the SDK's one rule, shared
/// with the gateway).
pub fn check_destination(name: &str) -> Result<(), String> {
    wraith_plugin::destination::check(name)
}

/// The sampling decision for an event id: keep when the first 8 bytes of
/// SHA-256(id), read big-endian, are divisible by `keep_one_in`. The same id
/// always gets the same answer, so retries agree.
pub fn sample_keeps(event_id: &str, keep_one_in: u64) -> bool {
    if keep_one_in <= 1 {
        return true;
    }
    let digest = Sha256::digest(event_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % keep_one_in == 0
}

/// Whether the leaf `actual` equals the configured scalar `expected`.
/// Numbers compare by value (`5` equals `5.0`); types never mix (`"5"` is not `5`).
pub fn value_equals(expected: &Value, actual: ValueRef<'_>) -> bool {
    match (expected, actual) {
        (Value::String(e), ValueRef::String(a)) => e == a,
        (Value::Bool(e), ValueRef::Bool(a)) => *e == a,
        (Value::Null, ValueRef::Null) => true,
        (Value::Number(e), ValueRef::Number(a)) => {
            let e_text = e.to_string();
            if e_text == a {
                return true;
            }
            if let (Some(x), Ok(y)) = (e.as_i64(), a.parse::<i64>()) {
                return x == y;
            }
            if let (Some(x), Ok(y)) = (e.as_u64(), a.parse::<u64>()) {
                return x == y;
            }
            matches!((e.as_f64(), a.parse::<f64>()), (Some(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}

impl Matcher {
    /// Whether the event matches.
    pub fn matches(&self, event: &impl Fields) -> bool {
        match self {
            Matcher::Equals { field, value } => {
                event.value(field).is_some_and(|a| value_equals(value, a))
            }
            Matcher::In { field, values } => event
                .value(field)
                .is_some_and(|a| values.iter().any(|v| value_equals(v, a))),
            Matcher::Prefix { field, prefix } => event
                .value(field)
                .and_then(|v| v.as_str())
                .is_some_and(|s| s.starts_with(prefix.as_str())),
            Matcher::Regex { field, regex } => event
                .value(field)
                .and_then(|v| v.as_str())
                .is_some_and(|s| regex.is_match(s)),
            Matcher::Exists { field, exists } => event.exists(field) == *exists,
            Matcher::All(all) => all.iter().all(|m| m.matches(event)),
            Matcher::Any(any) => any.iter().any(|m| m.matches(event)),
            Matcher::Not(m) => !m.matches(event),
        }
    }

    /// Check a condition as written; errors name the field under `at`
    /// (e.g. `rules[2].when`).
    pub fn compile(v: &Value, at: &str) -> Result<Matcher, ConfigError> {
        const COMBINATORS: [&str; 3] = ["all", "any", "not"];
        const TESTS: [&str; 5] = ["equals", "in", "prefix", "regex", "exists"];
        let Some(obj) = v.as_object() else {
            return Err(ConfigError::new(
                at,
                r#"a condition is an object such as {"field": "level", "equals": "error"}, or {"all": [...]}, {"any": [...]}, {"not": {...}}"#,
            ));
        };
        for key in obj.keys() {
            if key != "field"
                && !COMBINATORS.contains(&key.as_str())
                && !TESTS.contains(&key.as_str())
            {
                return Err(ConfigError::new(
                    format!("{at}.{key}"),
                    format!(
                        "unknown key `{key}`; a condition has `field` and one of equals, in, prefix, regex, exists, or is all/any/not"
                    ),
                ));
            }
        }
        if let Some(name) = COMBINATORS.iter().find(|c| obj.contains_key(**c)) {
            if obj.len() != 1 {
                return Err(ConfigError::new(
                    at,
                    format!("`{name}` must be the only key of its condition"),
                ));
            }
            let f = format!("{at}.{name}");
            let inner = &obj[*name];
            if *name == "not" {
                return Ok(Matcher::Not(Box::new(Matcher::compile(inner, &f)?)));
            }
            let list = match inner.as_array() {
                Some(list) if !list.is_empty() => list,
                _ => {
                    return Err(ConfigError::new(
                        &f,
                        "must be a non-empty list of conditions",
                    ));
                }
            };
            let list = list
                .iter()
                .enumerate()
                .map(|(i, m)| Matcher::compile(m, &format!("{f}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if *name == "all" {
                Matcher::All(list)
            } else {
                Matcher::Any(list)
            });
        }
        let tests: Vec<&str> = TESTS
            .iter()
            .copied()
            .filter(|t| obj.contains_key(*t))
            .collect();
        let [test] = tests[..] else {
            return Err(ConfigError::new(
                at,
                format!(
                    "a condition needs exactly one of equals, in, prefix, regex, exists; got {}",
                    if tests.is_empty() {
                        "none".to_string()
                    } else {
                        tests.join(", ")
                    }
                ),
            ));
        };
        let field_at = format!("{at}.field");
        let field = match obj.get("field") {
            Some(Value::String(f)) => canonical_path(f, &field_at)?,
            Some(_) => {
                return Err(ConfigError::new(
                    &field_at,
                    "must be a dotted field path (a string)",
                ));
            }
            None => {
                return Err(ConfigError::new(
                    &field_at,
                    "required: the field the condition tests",
                ));
            }
        };
        let f = format!("{at}.{test}");
        let arg = &obj[test];
        Ok(match test {
            "equals" => Matcher::Equals {
                field,
                value: scalar(arg, &f)?.clone(),
            },
            "in" => {
                let values = match arg.as_array() {
                    Some(list) if !list.is_empty() => list,
                    _ => return Err(ConfigError::new(&f, "must be a non-empty list of values")),
                };
                let values = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| scalar(v, &format!("{f}[{i}]")).cloned())
                    .collect::<Result<_, _>>()?;
                Matcher::In { field, values }
            }
            "prefix" => Matcher::Prefix {
                field,
                prefix: arg
                    .as_str()
                    .ok_or_else(|| ConfigError::new(&f, "must be a string"))?
                    .to_string(),
            },
            "regex" => {
                let text = arg.as_str().ok_or_else(|| {
                    ConfigError::new(&f, "must be a regular expression (a string)")
                })?;
                let regex = Regex::new(text).map_err(|e| {
                    ConfigError::new(&f, format!("invalid regular expression: {e}"))
                })?;
                Matcher::Regex { field, regex }
            }
            _ => Matcher::Exists {
                field,
                exists: arg
                    .as_bool()
                    .ok_or_else(|| ConfigError::new(&f, "must be true or false"))?,
            },
        })
    }
}

/// A value a leaf can equal: a string, number, boolean or null.
fn scalar<'v>(v: &'v Value, at: &str) -> Result<&'v Value, ConfigError> {
    match v {
        Value::Object(_) | Value::Array(_) => Err(ConfigError::new(
            at,
            "must be a string, number, boolean or null (fields are compared one value at a time)",
        )),
        v => Ok(v),
    }
}

/// Parse a dotted path and write it back in canonical (leaf) form.
fn canonical_path(text: &str, at: &str) -> Result<String, ConfigError> {
    path::parse(text)
        .map(|segments| path::render(&segments))
        .map_err(|e| ConfigError::new(at, format!("not a valid field path: {e}")))
}

fn destination(v: &Value, at: &str) -> Result<String, ConfigError> {
    let name = v
        .as_str()
        .ok_or_else(|| ConfigError::new(at, "must be a destination name (a string)"))?;
    check_destination(name).map_err(|m| ConfigError::new(at, m))?;
    Ok(name.to_string())
}

impl Action {
    /// Check an action as written; errors name the field under `at` (e.g.
    /// `rules[2].then`). `label` names the rule in default drop reasons.
    pub fn compile(v: &Value, at: &str, label: &str) -> Result<Action, ConfigError> {
        let expected = r#"an action is "keep", "drop", {"route": "<destination>"}, {"drop": "<reason>"} or {"sample": {"keep_one_in": N}}"#;
        let default_reason = || format!("dropped by route {label}");
        let obj = match v {
            Value::String(s) if s == "keep" => return Ok(Action::Keep),
            Value::String(s) if s == "drop" => return Ok(Action::Drop(default_reason())),
            Value::Object(obj) => obj,
            _ => return Err(ConfigError::new(at, expected)),
        };
        let mut keys = obj.keys();
        let (Some(key), None) = (keys.next(), keys.next()) else {
            return Err(ConfigError::new(
                at,
                format!("exactly one key expected; {expected}"),
            ));
        };
        let f = format!("{at}.{key}");
        let arg = &obj[key];
        match key.as_str() {
            "route" => Ok(Action::Route(destination(arg, &f)?)),
            "drop" => match arg {
                Value::String(reason) if !reason.is_empty() => Ok(Action::Drop(reason.clone())),
                Value::Null => Ok(Action::Drop(default_reason())),
                _ => Err(ConfigError::new(
                    &f,
                    "must be a reason (a non-empty string) or null",
                )),
            },
            "sample" => Action::compile_sample(arg, &f),
            other => Err(ConfigError::new(
                &f,
                format!("unknown action `{other}`; {expected}"),
            )),
        }
    }

    fn compile_sample(v: &Value, at: &str) -> Result<Action, ConfigError> {
        let Some(obj) = v.as_object() else {
            return Err(ConfigError::new(
                at,
                r#"must be an object such as {"keep_one_in": 10}"#,
            ));
        };
        let mut keep_one_in = None;
        let mut route = None;
        for (key, arg) in obj {
            let f = format!("{at}.{key}");
            match key.as_str() {
                "keep_one_in" => match arg.as_u64() {
                    Some(n) if n >= 1 => keep_one_in = Some(n),
                    _ => return Err(ConfigError::new(&f, "must be a whole number of at least 1")),
                },
                "route" => route = Some(destination(arg, &f)?),
                other => {
                    return Err(ConfigError::new(
                        &f,
                        format!(
                            "unknown key `{other}`; a sample has `keep_one_in` and an optional `route`"
                        ),
                    ));
                }
            }
        }
        let keep_one_in =
            keep_one_in.ok_or_else(|| ConfigError::new(format!("{at}.keep_one_in"), "required"))?;
        Ok(Action::Sample { keep_one_in, route })
    }
}

/// The decision about one event: the verdict and the counters to add 1 to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub counters: &'static [&'static str],
}

impl Decision {
    fn new(verdict: Verdict, counters: &'static [&'static str]) -> Self {
        Decision { verdict, counters }
    }
}

/// The checked rules.
#[derive(Debug, Clone)]
pub struct Router {
    pub rules: Vec<Rule>,
    pub default: Action,
}

impl Router {
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let rules = settings
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let at = format!("rules[{i}]");
                Ok(Rule {
                    when: Matcher::compile(&r.when, &format!("{at}.when"))?,
                    then: Action::compile(&r.then, &format!("{at}.then"), &at)?,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        let default = match &settings.default {
            None | Some(Value::Null) => Action::Keep,
            Some(v) => Action::compile(v, "default", "default")?,
        };
        Ok(Router { rules, default })
    }

    /// The action for an event: the first matching rule's, else the default.
    pub fn action_for(&self, event: &impl Fields) -> &Action {
        self.rules
            .iter()
            .find(|r| r.when.matches(event))
            .map_or(&self.default, |r| &r.then)
    }

    /// Decide about an event.
    pub fn decide(&self, event: &impl Fields) -> Decision {
        match self.action_for(event) {
            Action::Keep => Decision::new(Verdict::Keep, &[]),
            Action::Route(d) => Decision::new(Verdict::Route(d.clone()), &["routed"]),
            Action::Drop(reason) => Decision::new(Verdict::Drop(reason.clone()), &["dropped"]),
            Action::Sample { keep_one_in, route } => {
                let id = match event.value(EVENT_ID) {
                    Some(ValueRef::String(s) | ValueRef::Number(s)) => Some(s),
                    _ => None,
                };
                // Without an id there is nothing stable to decide on: keep.
                if id.is_some_and(|id| !sample_keeps(id, *keep_one_in)) {
                    return Decision::new(
                        Verdict::Drop(format!("sampled out (keep 1 in {keep_one_in})")),
                        &["sampled_out"],
                    );
                }
                match route {
                    Some(d) => Decision::new(Verdict::Route(d.clone()), &["sampled_in", "routed"]),
                    None => Decision::new(Verdict::Keep, &["sampled_in"]),
                }
            }
        }
    }
}

/// The plugin.
#[derive(Debug)]
pub struct Route {
    router: Router,
}

impl Route {
    pub fn router(&self) -> &Router {
        &self.router
    }
}

impl Plugin for Route {
    fn init(config: Config) -> Result<Self, ConfigError> {
        let settings: Settings = config.parse()?;
        Ok(Route {
            router: Router::new(&settings)?,
        })
    }

    fn process(&mut self, event: &mut Event<'_>) -> Verdict {
        let decision = self.router.decide(event);
        for name in decision.counters {
            wraith_plugin::counter(name, 1);
        }
        decision.verdict
    }
}

wraith_plugin::export!(Route);

#[cfg(test)]
mod tests;
