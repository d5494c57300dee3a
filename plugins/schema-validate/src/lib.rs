//! Wraith plugin: validate events against per-`event_type` schemas (a JSON
//! Schema subset) and reject or tag the ones that do not conform.
//!
//! See the crate's README for the config and behaviour.

pub mod flat;
pub mod pattern;
pub mod plan;
pub mod schema;

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use wraith_plugin::{Config, ConfigError, Event, Leaf, Plugin, Verdict, path};

pub use schema::{Errors, JsonType, MAX_ERRORS, Schema};

/// The schema key that applies to every event, whatever its type.
pub const ENVELOPE: &str = "*";

/// Where tag mode writes the errors.
pub const ERRORS_PATH: &str = "_wraith.schema_errors";

/// Root keys that are never "additional properties": what the gateway puts
/// in every event, and its annotations.
pub const ALWAYS_ALLOWED: &[&str] = &["event_id", "timestamp", "level", "event_type", "_wraith"];

/// Schemas that ship with the plugin: the envelope (`*`) and the seed event types.
pub const BUILTIN: &[(&str, &str)] = &[
    (ENVELOPE, include_str!("../schemas/envelope.json")),
    ("tool_invoked", include_str!("../schemas/tool_invoked.json")),
    (
        "tool_succeeded",
        include_str!("../schemas/tool_succeeded.json"),
    ),
    ("tool_failed", include_str!("../schemas/tool_failed.json")),
    (
        "exception_unhandled",
        include_str!("../schemas/exception_unhandled.json"),
    ),
    (
        "validation_failed",
        include_str!("../schemas/validation_failed.json"),
    ),
    (
        "daemon_started",
        include_str!("../schemas/daemon_started.json"),
    ),
    (
        "daemon_stopping",
        include_str!("../schemas/daemon_stopping.json"),
    ),
];

/// What to do with an event that breaks its schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Send it to the dead-letter queue with the errors as the reason.
    #[default]
    Reject,
    /// Keep it and list the errors at `_wraith.schema_errors`.
    Tag,
}

/// What to do with an event whose `event_type` has no schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownEventTypes {
    /// Check it against the envelope only.
    #[default]
    Allow,
    /// Treat it as invalid (`event_type: no schema for "..."`).
    Reject,
}

/// The plugin's config, as the operator writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub unknown_event_types: UnknownEventTypes,
    /// Schemas by event type (`*` for the envelope), added to or replacing
    /// the built-in ones.
    #[serde(default)]
    pub schemas: Map<String, Value>,
    /// Whether the built-in schemas are loaded.
    #[serde(default = "yes")]
    pub builtin: bool,
}

fn yes() -> bool {
    true
}

/// Compiled schemas and the rules for applying them.
#[derive(Debug, Clone)]
pub struct Validator {
    pub mode: Mode,
    pub unknown_event_types: UnknownEventTypes,
    envelope: Option<Schema>,
    by_type: HashMap<String, Schema>,
    /// Root keys that `additionalProperties: false` in a type schema allows:
    /// [`ALWAYS_ALLOWED`] and the envelope's properties.
    envelope_keys: Vec<String>,
}

impl Validator {
    /// Compile the settings: built-ins first (when enabled), then the
    /// operator's schemas over them.
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let mut sources: Vec<(String, Value, String)> = Vec::new();
        if settings.builtin {
            for (name, text) in BUILTIN {
                let value = serde_json::from_str(text).map_err(|e| {
                    ConfigError::new(
                        "builtin",
                        format!("built-in schema {name} is not JSON: {e}"),
                    )
                })?;
                sources.push((name.to_string(), value, "builtin".into()));
            }
        }
        for (name, value) in &settings.schemas {
            if name.is_empty() {
                return Err(ConfigError::new(
                    "schemas",
                    "an event type must not be empty",
                ));
            }
            sources.retain(|(n, _, _)| n != name);
            sources.push((name.clone(), value.clone(), format!("schemas.{name}")));
        }
        let mut envelope = None;
        let mut by_type = HashMap::new();
        for (name, value, field) in sources {
            let schema = Schema::compile(&value, &field)?;
            if name == ENVELOPE {
                envelope = Some(schema);
            } else {
                by_type.insert(name, schema);
            }
        }
        let mut envelope_keys: Vec<String> = ALWAYS_ALLOWED.iter().map(|k| k.to_string()).collect();
        if let Some(env) = &envelope {
            envelope_keys.extend(env.property_names().map(str::to_string));
        }
        Ok(Validator {
            mode: settings.mode,
            unknown_event_types: settings.unknown_event_types,
            envelope,
            by_type,
            envelope_keys,
        })
    }

    /// Whether a schema exists for this event type.
    pub fn knows(&self, event_type: &str) -> bool {
        self.by_type.contains_key(event_type)
    }

    /// Whether an event, read from its leaves, is shown valid without
    /// rebuilding it (see [`flat`]); `false` means "run [`Validator::check`]".
    pub fn accepts(&self, leaves: &[Leaf<'_>]) -> bool {
        let root = flat::Node::root(leaves);
        let Some(shape) = root.shape() else {
            return false;
        };
        // The root's keys are read once, for the envelope and the type's
        // schema alike.
        let mut children = Vec::new();
        let known = if matches!(shape, flat::Shape::Object) {
            children.reserve(32);
            if root.children(false, &mut children).is_none() {
                return false;
            }
            Some(children.as_slice())
        } else {
            None
        };
        let event_type = known
            .and_then(|c| c.iter().find(|(k, _)| *k == "event_type"))
            .and_then(|(_, node)| match node.shape() {
                Some(flat::Shape::String(s)) => Some(s),
                _ => None,
            });
        let type_schema = event_type.and_then(|t| self.by_type.get(t));
        if type_schema.is_none() && self.unknown_event_types == UnknownEventTypes::Reject {
            return false;
        }
        if let Some(env) = &self.envelope {
            let allowed = |key: &str| {
                ALWAYS_ALLOWED
                    .iter()
                    .any(|n| wraith_plugin::same_bytes(n.as_bytes(), key.as_bytes()))
                    || type_schema.is_some_and(|s| s.property(key).is_some())
            };
            if !env.accepts_shape(root, shape, known, &allowed) {
                return false;
            }
        }
        match type_schema {
            Some(schema) => schema.accepts_shape(root, shape, known, &|key| {
                self.envelope_keys
                    .iter()
                    .any(|n| wraith_plugin::same_bytes(n.as_bytes(), key.as_bytes()))
            }),
            None => true,
        }
    }

    /// Validate a whole event: the envelope, then its type's schema.
    pub fn check(&self, event: &Value) -> Errors {
        let mut errors = Errors::default();
        let event_type = event.get("event_type");
        let type_schema = event_type
            .and_then(Value::as_str)
            .and_then(|t| self.by_type.get(t));
        if let Some(env) = &self.envelope {
            // Root fields declared by the type's schema are not "additional"
            // to the envelope.
            let mut allowed = ALWAYS_ALLOWED.to_vec();
            if let Some(schema) = type_schema {
                allowed.extend(schema.property_names());
            }
            env.validate_root(event, &allowed, &mut errors);
        }
        if let Some(schema) = type_schema {
            // Nor are the envelope's fields to the type's schema.
            let allowed: Vec<&str> = self.envelope_keys.iter().map(String::as_str).collect();
            schema.validate_root(event, &allowed, &mut errors);
        } else if self.unknown_event_types == UnknownEventTypes::Reject {
            let rule = match event_type {
                Some(t @ Value::String(_)) => format!("no schema for {}", schema::describe(t)),
                Some(other) => format!("type string, got {}", schema::describe(other)),
                None => "required".into(),
            };
            errors.push("event_type", rule);
        }
        errors
    }
}

/// Rebuild the event as JSON from its leaves. Leaves with damaged paths are
/// skipped.
pub fn event_from_leaves<'a>(leaves: impl IntoIterator<Item = Leaf<'a>>) -> Value {
    let mut root = Value::Object(Map::new());
    for leaf in leaves {
        // The root of an empty event is a single leaf with an empty path.
        let Ok(segments) = path::parse(leaf.path) else {
            continue;
        };
        let value = leaf.value.to_value().unwrap_or(Value::Null);
        path::set(&mut root, &segments, value);
    }
    root
}

/// The reason given when rejecting: every error, `; `-separated.
pub fn reject_reason(errors: &Errors) -> String {
    let mut reason = errors.list().join("; ");
    if errors.truncated() {
        reason.push_str("; (more errors not shown)");
    }
    reason
}

/// The list written at `_wraith.schema_errors` in tag mode.
pub fn tag_value(errors: &Errors) -> Value {
    let mut list: Vec<Value> = errors.list().iter().cloned().map(Value::String).collect();
    if errors.truncated() {
        list.push(Value::String("(more errors not shown)".into()));
    }
    Value::Array(list)
}

/// The plugin.
pub struct SchemaValidate {
    validator: Validator,
    plans: plan::Plans,
}

impl SchemaValidate {
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The validator with the plugin's remembered structures.
    pub fn validator_and_plans(&mut self) -> (&Validator, &mut plan::Plans) {
        (&self.validator, &mut self.plans)
    }
}

impl Plugin for SchemaValidate {
    fn init(config: Config) -> Result<Self, ConfigError> {
        let settings: Settings = config.parse()?;
        Ok(SchemaValidate {
            validator: Validator::new(&settings)?,
            plans: plan::Plans::default(),
        })
    }

    fn process(&mut self, event: &mut Event<'_>) -> Verdict {
        let leaves: Vec<Leaf<'_>> = event.leaves().collect();
        if self.validator.accepts_remembered(&leaves, &mut self.plans) {
            return Verdict::Keep;
        }
        let value = event_from_leaves(leaves);
        let errors = self.validator.check(&value);
        if errors.is_empty() {
            return Verdict::Keep;
        }
        match self.validator.mode {
            Mode::Reject => {
                wraith_plugin::counter("schema_rejected", 1);
                Verdict::Reject(reject_reason(&errors))
            }
            Mode::Tag => {
                wraith_plugin::counter("schema_tagged", 1);
                event.set_json(ERRORS_PATH, &tag_value(&errors));
                Verdict::Keep
            }
        }
    }
}

wraith_plugin::export!(SchemaValidate);

#[cfg(test)]
mod tests;
