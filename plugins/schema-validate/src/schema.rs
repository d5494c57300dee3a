//! The JSON Schema subset: compiling a schema (checked once, at init) and
//! validating a JSON value against it.

use std::sync::Arc;

use crate::pattern::Pattern;
use serde_json::{Number, Value};
use wraith_plugin::{ConfigError, path};

/// Keywords a schema may use. Annotation keywords are accepted and ignored.
pub const KEYWORDS: &[&str] = &[
    "type",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "description",
    "title",
    "$comment",
];

/// The JSON types a `type` keyword can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Null,
}

impl JsonType {
    /// The type called `name` in a schema.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => JsonType::String,
            "number" => JsonType::Number,
            "integer" => JsonType::Integer,
            "boolean" => JsonType::Boolean,
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            "null" => JsonType::Null,
            _ => return None,
        })
    }

    /// The name as written in a schema.
    pub fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Null => "null",
        }
    }

    /// Whether `value` is of this type. `integer` accepts numbers without a
    /// fractional part (`3` and `3.0`), as JSON Schema does.
    pub fn matches(self, value: &Value) -> bool {
        match (self, value) {
            (JsonType::String, Value::String(_))
            | (JsonType::Number, Value::Number(_))
            | (JsonType::Boolean, Value::Bool(_))
            | (JsonType::Object, Value::Object(_))
            | (JsonType::Array, Value::Array(_))
            | (JsonType::Null, Value::Null) => true,
            (JsonType::Integer, Value::Number(n)) => is_integer(n),
            _ => false,
        }
    }
}

pub(crate) fn is_integer(n: &Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// A compiled schema: every keyword checked, every pattern compiled.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Accepted types; empty accepts any.
    pub(crate) types: Vec<JsonType>,
    pub(crate) required: Vec<String>,
    /// In the order the schema lists them.
    pub(crate) properties: Vec<(String, Arc<Schema>)>,
    pub(crate) additional_properties: bool,
    pub(crate) items: Option<Arc<Schema>>,
    pub(crate) enum_values: Option<Vec<Value>>,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) minimum: Option<Number>,
    pub(crate) maximum: Option<Number>,
    pub(crate) min_length: Option<u64>,
    pub(crate) max_length: Option<u64>,
}

impl Default for Schema {
    /// The empty schema, which accepts everything.
    fn default() -> Self {
        Schema {
            types: Vec::new(),
            required: Vec::new(),
            properties: Vec::new(),
            additional_properties: true,
            items: None,
            enum_values: None,
            pattern: None,
            minimum: None,
            maximum: None,
            min_length: None,
            max_length: None,
        }
    }
}

impl Schema {
    /// Compile `value`; errors name the offending keyword under `field` (the
    /// config path of the schema, e.g. `schemas.tool_failed`).
    pub fn compile(value: &Value, field: &str) -> Result<Schema, ConfigError> {
        let Some(obj) = value.as_object() else {
            return Err(ConfigError::new(
                field,
                format!("a schema must be a JSON object, got {}", describe(value)),
            ));
        };
        let mut s = Schema::default();
        for (key, v) in obj {
            let f = format!("{field}.{key}");
            match key.as_str() {
                "type" => s.types = compile_types(v, &f)?,
                "required" => {
                    let items = v.as_array().ok_or_else(|| {
                        ConfigError::new(&f, "must be an array of property names")
                    })?;
                    for (i, item) in items.iter().enumerate() {
                        let name = item.as_str().ok_or_else(|| {
                            ConfigError::new(
                                format!("{f}[{i}]"),
                                "must be a property name (a string)",
                            )
                        })?;
                        s.required.push(name.to_string());
                    }
                }
                "properties" => {
                    let props = v.as_object().ok_or_else(|| {
                        ConfigError::new(&f, "must be an object of property name to schema")
                    })?;
                    for (name, sub) in props {
                        let sub = Schema::compile(sub, &format!("{f}.{name}"))?;
                        s.properties.push((name.clone(), Arc::new(sub)));
                    }
                }
                "additionalProperties" => {
                    s.additional_properties = v.as_bool().ok_or_else(|| {
                        ConfigError::new(
                            &f,
                            "must be true or false (schemas are not supported here)",
                        )
                    })?;
                }
                "items" => s.items = Some(Arc::new(Schema::compile(v, &f)?)),
                "enum" => match v.as_array() {
                    Some(values) if !values.is_empty() => s.enum_values = Some(values.clone()),
                    _ => return Err(ConfigError::new(&f, "must be a non-empty array of values")),
                },
                "pattern" => {
                    let text = v.as_str().ok_or_else(|| {
                        ConfigError::new(&f, "must be a regular expression (a string)")
                    })?;
                    let re = Pattern::new(text).map_err(|e| {
                        ConfigError::new(&f, format!("invalid regular expression: {e}"))
                    })?;
                    s.pattern = Some(re);
                }
                "minimum" | "maximum" => {
                    let n = match v {
                        Value::Number(n) => n.clone(),
                        _ => return Err(ConfigError::new(&f, "must be a number")),
                    };
                    if key == "minimum" {
                        s.minimum = Some(n);
                    } else {
                        s.maximum = Some(n);
                    }
                }
                "minLength" | "maxLength" => {
                    let n = v
                        .as_u64()
                        .ok_or_else(|| ConfigError::new(&f, "must be a non-negative integer"))?;
                    if key == "minLength" {
                        s.min_length = Some(n);
                    } else {
                        s.max_length = Some(n);
                    }
                }
                "description" | "title" | "$comment" => {}
                other => {
                    return Err(ConfigError::new(
                        &f,
                        format!(
                            "unknown keyword `{other}`; supported: {}",
                            KEYWORDS.join(", ")
                        ),
                    ));
                }
            }
        }
        if let (Some(min), Some(max)) = (&s.minimum, &s.maximum)
            && compare(min, max) == Some(std::cmp::Ordering::Greater)
        {
            return Err(ConfigError::new(
                format!("{field}.minimum"),
                format!("{min} is greater than maximum {max}"),
            ));
        }
        if let (Some(min), Some(max)) = (s.min_length, s.max_length)
            && min > max
        {
            return Err(ConfigError::new(
                format!("{field}.minLength"),
                format!("{min} is greater than maxLength {max}"),
            ));
        }
        Ok(s)
    }

    /// Names of the properties this schema declares.
    pub fn property_names(&self) -> impl Iterator<Item = &str> {
        self.properties.iter().map(|(n, _)| n.as_str())
    }

    /// Validate `value`, the whole event; errors are `"<path>: <rule>"`.
    /// `also_allowed` are root keys that `additionalProperties: false` at the
    /// root lets through (the envelope's fields, `_wraith`).
    pub fn validate_root(&self, value: &Value, also_allowed: &[&str], errors: &mut Errors) {
        let mut path = String::new();
        self.validate_at(value, &mut path, also_allowed, errors);
    }

    /// Validate `value`, found at the (escaped) event path `path`.
    pub fn validate(&self, value: &Value, path: &mut String, errors: &mut Errors) {
        self.validate_at(value, path, &[], errors);
    }

    fn validate_at(
        &self,
        value: &Value,
        path: &mut String,
        also_allowed: &[&str],
        errors: &mut Errors,
    ) {
        if errors.is_full() {
            return;
        }
        if !self.types.is_empty() && !self.types.iter().any(|t| t.matches(value)) {
            let names: Vec<_> = self.types.iter().map(|t| t.name()).collect();
            errors.push(
                path,
                format!("type {}, got {}", names.join("|"), describe(value)),
            );
            // The other keywords would only repeat the same complaint.
            return;
        }
        if let Some(allowed) = &self.enum_values
            && !allowed.iter().any(|a| json_eq(a, value))
        {
            let list = Value::Array(allowed.clone());
            errors.push(path, format!("enum {list}, got {}", describe(value)));
        }
        match value {
            Value::String(s) => self.check_string(s, path, errors),
            Value::Number(n) => self.check_number(n, path, errors),
            Value::Object(map) => {
                for name in &self.required {
                    if !map.contains_key(name) {
                        with_key(path, name, |p| errors.push(p, "required".into()));
                    }
                }
                for (name, sub) in &self.properties {
                    if let Some(v) = map.get(name) {
                        with_key(path, name, |p| sub.validate_at(v, p, &[], errors));
                    }
                }
                if !self.additional_properties {
                    for key in map.keys() {
                        let declared = self.properties.iter().any(|(n, _)| n == key)
                            || also_allowed.contains(&key.as_str());
                        if !declared {
                            with_key(path, key, |p| {
                                errors.push(p, "additionalProperties false".into())
                            });
                        }
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = &self.items {
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        path::push_index(path, i);
                        item_schema.validate_at(item, path, &[], errors);
                        path.truncate(len);
                    }
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// Whether a string passes `pattern`, `minLength` and `maxLength`.
    pub(crate) fn string_ok(&self, s: &str) -> bool {
        if let Some(re) = &self.pattern
            && !re.is_match(s)
        {
            return false;
        }
        // A string of n bytes has between ⌈n/4⌉ and n characters: the
        // characters are counted only when that range leaves it open.
        let (most, least) = (s.len() as u64, (s.len() as u64).div_ceil(4));
        let counted = || s.chars().count() as u64;
        self.min_length
            .is_none_or(|min| least >= min || (most >= min && counted() >= min))
            && self
                .max_length
                .is_none_or(|max| most <= max || (least <= max && counted() <= max))
    }

    /// Whether a number passes `minimum` and `maximum`.
    pub(crate) fn number_ok(&self, n: &Number) -> bool {
        let mut errors = Errors::default();
        self.check_number(n, "", &mut errors);
        errors.is_empty()
    }

    fn check_string(&self, s: &str, path: &str, errors: &mut Errors) {
        if let Some(re) = &self.pattern
            && !re.is_match(s)
        {
            errors.push(path, format!("pattern {}, got {}", re.as_str(), quote(s)));
        }
        if self.min_length.is_some() || self.max_length.is_some() {
            let len = s.chars().count() as u64;
            if let Some(min) = self.min_length
                && len < min
            {
                errors.push(path, format!("minLength {min}, got {len}"));
            }
            if let Some(max) = self.max_length
                && len > max
            {
                errors.push(path, format!("maxLength {max}, got {len}"));
            }
        }
    }

    fn check_number(&self, n: &Number, path: &str, errors: &mut Errors) {
        use std::cmp::Ordering::{Greater, Less};
        if let Some(min) = &self.minimum
            && compare(n, min) == Some(Less)
        {
            errors.push(path, format!("minimum {min}, got {n}"));
        }
        if let Some(max) = &self.maximum
            && compare(n, max) == Some(Greater)
        {
            errors.push(path, format!("maximum {max}, got {n}"));
        }
    }
}

/// Run `f` with `key` appended to `path`.
fn with_key<R>(path: &mut String, key: &str, f: impl FnOnce(&mut String) -> R) -> R {
    let len = path.len();
    path::push_key(path, key);
    let r = f(path);
    path.truncate(len);
    r
}

fn compile_types(v: &Value, field: &str) -> Result<Vec<JsonType>, ConfigError> {
    let expected =
        "must be one of string, number, integer, boolean, object, array, null, or a list of them";
    let one = |name: &Value, field: &str| {
        name.as_str()
            .and_then(JsonType::parse)
            .ok_or_else(|| ConfigError::new(field, format!("{expected}; got {name}")))
    };
    match v {
        Value::Array(names) if !names.is_empty() => names
            .iter()
            .enumerate()
            .map(|(i, n)| one(n, &format!("{field}[{i}]")))
            .collect(),
        Value::Array(_) => Err(ConfigError::new(field, expected)),
        name => Ok(vec![one(name, field)?]),
    }
}

/// Compare two JSON numbers by value.
pub(crate) fn compare(a: &Number, b: &Number) -> Option<std::cmp::Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// JSON equality, with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y) == Some(std::cmp::Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Longest string value quoted in an error, in characters.
const QUOTE_CHARS: usize = 40;

/// A string as JSON, cut short if long.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", Value::String(s[..cut].to_string())),
        None => Value::String(s.to_string()).to_string(),
    }
}

/// A value as shown after `got` in an error.
pub fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Object(_) => "an object".into(),
        Value::Array(_) => "an array".into(),
        other => other.to_string(),
    }
}

/// Most errors reported for one event; later ones are counted, not listed.
pub const MAX_ERRORS: usize = 20;

/// Validation errors of one event, `"<path>: <rule>"`, without duplicates.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Errors {
    list: Vec<String>,
    /// Errors beyond [`MAX_ERRORS`] that were not recorded.
    more: bool,
}

impl Errors {
    /// Record that `path` breaks `rule`.
    pub fn push(&mut self, path: &str, rule: String) {
        let path = if path.is_empty() { "(event)" } else { path };
        let line = format!("{path}: {rule}");
        if self.list.contains(&line) {
            return;
        }
        if self.list.len() == MAX_ERRORS {
            self.more = true;
        } else {
            self.list.push(line);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn is_full(&self) -> bool {
        self.more
    }

    /// The recorded errors, in the order found.
    pub fn list(&self) -> &[String] {
        &self.list
    }

    /// Whether errors past [`MAX_ERRORS`] were left out.
    pub fn truncated(&self) -> bool {
        self.more
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(schema: Value) -> Schema {
        Schema::compile(&schema, "s").unwrap()
    }

    /// Validate `value` against `schema` and compare the errors.
    fn check(schema: Value, value: Value, expected: &[&str]) {
        let mut errors = Errors::default();
        compile(schema.clone()).validate_root(&value, &[], &mut errors);
        assert_eq!(errors.list(), expected, "{schema} on {value}");
    }

    fn check_compile_error(schema: Value, field: &str, message_part: &str) {
        let err = Schema::compile(&schema, "schemas.t").unwrap_err();
        assert_eq!(err.field, field, "{schema}: {err}");
        assert!(err.message.contains(message_part), "{schema}: {err}");
    }

    #[test]
    fn type_keyword() {
        check(json!({"type": "string"}), json!("x"), &[]);
        check(
            json!({"type": "string"}),
            json!(5),
            &["(event): type string, got 5"],
        );
        check(json!({"type": "number"}), json!(5.5), &[]);
        check(json!({"type": "integer"}), json!(5), &[]);
        check(json!({"type": "integer"}), json!(5.0), &[]);
        check(
            json!({"type": "integer"}),
            json!(5.5),
            &["(event): type integer, got 5.5"],
        );
        check(json!({"type": "boolean"}), json!(false), &[]);
        check(json!({"type": "null"}), json!(null), &[]);
        check(
            json!({"type": "object"}),
            json!([]),
            &["(event): type object, got an array"],
        );
        check(
            json!({"type": "array"}),
            json!({}),
            &["(event): type array, got an object"],
        );
        check(json!({"type": ["string", "null"]}), json!(null), &[]);
        check(
            json!({"type": ["string", "null"]}),
            json!(true),
            &["(event): type string|null, got true"],
        );
    }

    #[test]
    fn object_keywords() {
        let schema = json!({
            "type": "object",
            "required": ["tool", "command"],
            "properties": {
                "tool": {"type": "string"},
                "context": {"type": "object", "properties": {"os": {"type": "string"}}, "required": ["os"]}
            }
        });
        check(schema.clone(), json!({"tool": "a", "command": "b"}), &[]);
        check(
            schema.clone(),
            json!({"tool": 1, "context": {"os": 2}}),
            &[
                "command: required",
                "tool: type string, got 1",
                "context.os: type string, got 2",
            ],
        );
        check(
            schema,
            json!({"tool": "a", "command": "b", "context": {}}),
            &["context.os: required"],
        );
    }

    #[test]
    fn additional_properties() {
        let schema = json!({"properties": {"a": {}}, "additionalProperties": false});
        check(schema.clone(), json!({"a": 1}), &[]);
        check(
            schema.clone(),
            json!({"a": 1, "b": 2}),
            &["b: additionalProperties false"],
        );
        check(
            schema,
            json!({"a.b": 1}),
            &["a\\.b: additionalProperties false"],
        );
        // Keys allowed at the root by the caller.
        let mut errors = Errors::default();
        compile(json!({"additionalProperties": false})).validate_root(
            &json!({"_wraith": {}, "x": 1}),
            &["_wraith"],
            &mut errors,
        );
        assert_eq!(errors.list(), ["x: additionalProperties false"]);
        check(json!({"additionalProperties": true}), json!({"z": 1}), &[]);
    }

    #[test]
    fn enum_keyword() {
        let schema = json!({"enum": ["debug", "info", 3]});
        check(schema.clone(), json!("info"), &[]);
        check(schema.clone(), json!(3.0), &[]);
        check(
            schema,
            json!("verbose"),
            &[r#"(event): enum ["debug","info",3], got "verbose""#],
        );
    }

    #[test]
    fn string_keywords() {
        let schema = json!({"pattern": "^[a-z]+$", "minLength": 2, "maxLength": 4});
        check(schema.clone(), json!("abc"), &[]);
        check(schema.clone(), json!("a"), &["(event): minLength 2, got 1"]);
        check(
            schema.clone(),
            json!("ABCDE"),
            &[
                r#"(event): pattern ^[a-z]+$, got "ABCDE""#,
                "(event): maxLength 4, got 5",
            ],
        );
        // Lengths count characters, not bytes.
        check(json!({"maxLength": 2}), json!("éé"), &[]);
        // String keywords ignore other types.
        check(schema, json!(12345), &[]);
        // Long values are cut short in messages.
        let long = "x".repeat(100);
        let mut errors = Errors::default();
        compile(json!({"pattern": "^y"})).validate_root(&json!(long), &[], &mut errors);
        assert!(errors.list()[0].ends_with(&format!("got \"{}\"…", "x".repeat(QUOTE_CHARS))));
    }

    #[test]
    fn number_keywords() {
        let schema = json!({"minimum": 0, "maximum": 10.5});
        check(schema.clone(), json!(0), &[]);
        check(schema.clone(), json!(10.5), &[]);
        check(schema.clone(), json!(-5), &["(event): minimum 0, got -5"]);
        check(
            schema.clone(),
            json!(11),
            &["(event): maximum 10.5, got 11"],
        );
        check(schema, json!("not a number"), &[]);
        check(json!({"minimum": 0}), json!(u64::MAX), &[]);
    }

    #[test]
    fn items_keyword() {
        let schema = json!({"type": "array", "items": {"type": "string"}});
        check(schema.clone(), json!(["a", "b"]), &[]);
        check(
            schema,
            json!(["a", 2, null]),
            &["[1]: type string, got 2", "[2]: type string, got null"],
        );
        check(
            json!({"properties": {"tags": {"items": {"type": "string"}}}}),
            json!({"tags": ["a", 1]}),
            &["tags[1]: type string, got 1"],
        );
    }

    #[test]
    fn errors_are_deduplicated_and_capped() {
        let mut errors = Errors::default();
        errors.push("a", "required".into());
        errors.push("a", "required".into());
        assert_eq!(errors.list(), ["a: required"]);
        let schema = json!({"additionalProperties": false});
        let many: serde_json::Map<String, Value> =
            (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
        let mut errors = Errors::default();
        compile(schema).validate_root(&Value::Object(many), &[], &mut errors);
        assert_eq!(errors.list().len(), MAX_ERRORS);
        assert!(errors.truncated());
    }

    #[test]
    fn compile_errors_name_the_keyword() {
        check_compile_error(json!("string"), "schemas.t", "must be a JSON object");
        check_compile_error(
            json!({"typ": "string"}),
            "schemas.t.typ",
            "unknown keyword `typ`",
        );
        check_compile_error(json!({"type": "text"}), "schemas.t.type", "must be one of");
        check_compile_error(
            json!({"type": ["string", 1]}),
            "schemas.t.type[1]",
            "must be one of",
        );
        check_compile_error(json!({"type": []}), "schemas.t.type", "must be one of");
        check_compile_error(json!({"required": "tool"}), "schemas.t.required", "array");
        check_compile_error(
            json!({"required": ["a", 2]}),
            "schemas.t.required[1]",
            "string",
        );
        check_compile_error(json!({"properties": []}), "schemas.t.properties", "object");
        check_compile_error(
            json!({"properties": {"a": {"properties": {"b": {"pattern": "("}}}}}),
            "schemas.t.properties.a.properties.b.pattern",
            "invalid regular expression",
        );
        check_compile_error(json!({"pattern": 5}), "schemas.t.pattern", "string");
        check_compile_error(
            json!({"additionalProperties": {}}),
            "schemas.t.additionalProperties",
            "true or false",
        );
        check_compile_error(json!({"enum": []}), "schemas.t.enum", "non-empty");
        check_compile_error(json!({"minimum": "0"}), "schemas.t.minimum", "number");
        check_compile_error(json!({"maximum": null}), "schemas.t.maximum", "number");
        check_compile_error(
            json!({"minLength": -1}),
            "schemas.t.minLength",
            "non-negative",
        );
        check_compile_error(
            json!({"maxLength": 1.5}),
            "schemas.t.maxLength",
            "non-negative",
        );
        check_compile_error(
            json!({"minimum": 5, "maximum": 1}),
            "schemas.t.minimum",
            "greater",
        );
        check_compile_error(
            json!({"minLength": 5, "maxLength": 1}),
            "schemas.t.minLength",
            "greater",
        );
        check_compile_error(json!({"items": 1}), "schemas.t.items", "JSON object");
    }

    #[test]
    fn annotations_are_ignored() {
        check(
            json!({"description": "d", "title": "t", "$comment": "c"}),
            json!(1),
            &[],
        );
    }
}
