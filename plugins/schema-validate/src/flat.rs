//! Validation straight from an event's leaves, without rebuilding the event
//! as JSON: the fast path for the common case, a valid event.
//!
//! The batch layout lists an event's leaves depth first, so the leaves under
//! any object key or array item are one contiguous run that shares a path
//! prefix. A [`Node`] is such a run plus the length of that prefix: it reads
//! as a JSON value without building one.
//!
//! [`Validator::accepts`](crate::Validator::accepts) answers `true` only
//! when the full check would find no error. Otherwise, and wherever this
//! reader does not follow the layout (escaped keys, a damaged path, `enum`
//! over containers), it answers `false`: the caller then rebuilds the event
//! and runs the full check, which decides and gives the exact errors. So a
//! mistake here can cost time, never a wrong verdict, as long as `true` is
//! right; the tests compare the two on every event they have.

use std::sync::Arc;

use crate::schema::{JsonType, Schema, compare, is_integer};
use serde_json::{Number, Value};
use wraith_plugin::{Leaf, ValueRef, same_bytes};

/// The leaves of one JSON value, all sharing the path prefix `path[..at]`.
#[derive(Clone, Copy)]
pub struct Node<'l, 'a> {
    pub(crate) leaves: &'l [Leaf<'a>],
    pub(crate) at: usize,
}

/// What a node holds.
#[derive(Clone, Copy)]
pub enum Shape<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(&'a str),
    /// An object with at least one key.
    Object,
    /// An array with at least one item.
    Array,
    /// `{}`.
    EmptyObject,
    /// `[]`.
    EmptyArray,
    /// A leaf holding other JSON text (not written by the host's encoder).
    Other,
}

impl<'a> Shape<'a> {
    /// The shape of a leaf's value.
    pub fn of_leaf(value: ValueRef<'a>) -> Self {
        match value {
            ValueRef::Null => Shape::Null,
            ValueRef::Bool(b) => Shape::Bool(b),
            ValueRef::Number(n) => Shape::Number(n),
            ValueRef::String(s) => Shape::String(s),
            ValueRef::Json("{}") => Shape::EmptyObject,
            ValueRef::Json("[]") => Shape::EmptyArray,
            ValueRef::Json(_) => Shape::Other,
        }
    }
}

impl<'l, 'a> Node<'l, 'a> {
    /// The whole event.
    pub fn root(leaves: &'l [Leaf<'a>]) -> Self {
        Node { leaves, at: 0 }
    }

    /// The node's shape; `None` when the leaves do not read as a value.
    pub fn shape(&self) -> Option<Shape<'a>> {
        let first = self.leaves.first()?;
        if first.path.len() == self.at {
            if self.leaves.len() != 1 {
                return None;
            }
            return Some(Shape::of_leaf(first.value));
        }
        match first.path.as_bytes().get(self.at)? {
            b'[' if self.at == 0 => None,
            _ if self.at == 0 => Some(Shape::Object),
            b'.' => Some(Shape::Object),
            b'[' => Some(Shape::Array),
            _ => None,
        }
    }

    /// The children of an object (key, value) or, with `array`, of an array
    /// (index text, value), in document order. `None` when a key is escaped
    /// or a path does not continue as expected.
    pub fn children(&self, array: bool, out: &mut Vec<(&'a str, Node<'l, 'a>)>) -> Option<()> {
        out.clear();
        let mut rest = self.leaves;
        while let Some(first) = rest.first() {
            let path = first.path.as_bytes();
            let (start, end, after) = match path.get(self.at)? {
                b'[' if array => {
                    let close = self.at + path[self.at..].iter().position(|&b| b == b']')?;
                    (self.at + 1, close, close + 1)
                }
                b'.' if self.at > 0 && !array => {
                    let start = self.at + 1;
                    let end = key_end(path, start)?;
                    (start, end, end)
                }
                _ if self.at == 0 && !array => {
                    let end = key_end(path, 0)?;
                    (0, end, end)
                }
                _ => return None,
            };
            if start == end {
                return None;
            }
            // Every leaf of this node shares `path[..self.at]` (its parent
            // checked that much), so only the key and its separator are
            // compared.
            let key = &path[self.at..after];
            let n = rest
                .iter()
                .take_while(|l| {
                    let p = l.path.as_bytes();
                    p.get(self.at..after).is_some_and(|k| same_bytes(k, key))
                        && matches!(p.get(after), None | Some(b'.' | b'['))
                })
                .count();
            out.push((
                &first.path[start..end],
                Node {
                    leaves: &rest[..n],
                    at: after,
                },
            ));
            rest = &rest[n..];
        }
        Some(())
    }
}

/// A number leaf's text read as a JSON number. Plain integers, what
/// telemetry mostly holds, are read directly; the rest (and `-0`, which
/// serde_json reads as a float) go through serde_json's parser.
pub(crate) fn number(text: &str) -> Option<Number> {
    match plain_integer(text) {
        Some(n) => Some(Number::from(n)),
        None => text.parse::<Number>().ok(),
    }
}

/// The value of a number written as a plain integer (`-` and up to 18
/// digits, no leading zero, not `-0`), read without serde_json; `None` for
/// any other text.
pub(crate) fn plain_integer(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d.as_bytes()),
        None => (false, text.as_bytes()),
    };
    if !(1..=18).contains(&digits.len()) || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
        return None;
    }
    // At most 18 digits: no overflow.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if negative { -n } else { n })
}

/// Where a key that starts at `start` ends; `None` for an escaped key.
fn key_end(path: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while let Some(&b) = path.get(i) {
        match b {
            b'.' | b'[' => break,
            b'\\' | b']' => return None,
            _ => i += 1,
        }
    }
    Some(i)
}

impl JsonType {
    fn matches_shape(self, shape: &Shape<'_>) -> bool {
        match (self, shape) {
            (JsonType::String, Shape::String(_))
            | (JsonType::Boolean, Shape::Bool(_))
            | (JsonType::Object, Shape::Object | Shape::EmptyObject)
            | (JsonType::Array, Shape::Array | Shape::EmptyArray)
            | (JsonType::Null, Shape::Null) => true,
            (JsonType::Number, Shape::Number(n)) => number(n).is_some(),
            (JsonType::Integer, Shape::Number(n)) => number(n).is_some_and(|n| is_integer(&n)),
            _ => false,
        }
    }
}

/// Whether the scalar `shape` is shown equal to the enum value `allowed`
/// (numbers by value, as the full check compares them).
fn enum_eq(allowed: &Value, shape: &Shape<'_>) -> bool {
    match (allowed, shape) {
        (Value::String(a), Shape::String(s)) => {
            wraith_plugin::same_bytes(a.as_bytes(), s.as_bytes())
        }
        (Value::Number(a), Shape::Number(n)) => {
            number(n).is_some_and(|n| compare(a, &n) == Some(std::cmp::Ordering::Equal))
        }
        (Value::Bool(a), Shape::Bool(b)) => a == b,
        (Value::Null, Shape::Null) => true,
        _ => false,
    }
}

impl Schema {
    /// Whether `node` is shown to pass this schema (see the module doc).
    /// `also_allowed` tells which keys `additionalProperties: false` lets
    /// through at this level.
    pub fn accepts(&self, node: Node<'_, '_>, also_allowed: &dyn Fn(&str) -> bool) -> bool {
        match node.shape() {
            Some(shape) => self.accepts_shape(node, shape, None, also_allowed),
            None => false,
        }
    }

    /// [`Schema::accepts`] for a node whose shape is known and, for an
    /// object, whose children may be known already (the validator reads the
    /// event's root keys once for the envelope and the type's schema).
    pub(crate) fn accepts_shape<'l, 'a>(
        &self,
        node: Node<'l, 'a>,
        shape: Shape<'a>,
        children: Option<&[(&'a str, Node<'l, 'a>)]>,
        also_allowed: &dyn Fn(&str) -> bool,
    ) -> bool {
        if !self.types.is_empty() && !self.types.iter().any(|t| t.matches_shape(&shape)) {
            return false;
        }
        if let Some(allowed) = &self.enum_values
            && !allowed.iter().any(|a| enum_eq(a, &shape))
        {
            return false;
        }
        match shape {
            Shape::String(s) => self.string_ok(s),
            Shape::Number(n) => {
                (self.minimum.is_none() && self.maximum.is_none())
                    || number(n).is_some_and(|n| self.number_ok(&n))
            }
            Shape::Null | Shape::Bool(_) | Shape::EmptyArray => true,
            Shape::EmptyObject => self.required.is_empty(),
            Shape::Other => false,
            Shape::Object | Shape::Array => {
                self.members_ok(node, shape, children, also_allowed, &mut |sub, child| {
                    sub.accepts(child, &|_| false)
                })
            }
        }
    }

    /// Whether an object or an array passes this schema's keywords for
    /// containers (`type` and `enum`, which compares scalars only): the
    /// part of [`Schema::accepts_shape`] that its members do not decide.
    pub(crate) fn container_ok(&self, shape: &Shape<'_>) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t.matches_shape(shape)))
            && self.enum_values.is_none()
    }

    /// The members of an object (`required`, `properties`,
    /// `additionalProperties`, children known or read here) or an array
    /// (`items`): whether the keys pass, and `member` for each member a
    /// sub-schema governs. [`Schema::accepts_shape`] checks the member;
    /// the structure walk of [`crate::plan`] leaves its leaves for later.
    pub(crate) fn members_ok<'l, 'a>(
        &self,
        node: Node<'l, 'a>,
        shape: Shape<'a>,
        children: Option<&[(&'a str, Node<'l, 'a>)]>,
        also_allowed: &dyn Fn(&str) -> bool,
        member: &mut dyn FnMut(&Arc<Schema>, Node<'l, 'a>) -> bool,
    ) -> bool {
        match shape {
            Shape::Object => {
                let mut own = Vec::new();
                let children = match children {
                    Some(c) => c,
                    None => {
                        own.reserve(16);
                        if node.children(false, &mut own).is_none() {
                            return false;
                        }
                        &own
                    }
                };
                self.required.iter().all(|name| {
                    children
                        .iter()
                        .any(|(k, _)| same_bytes(k.as_bytes(), name.as_bytes()))
                }) && children
                    .iter()
                    .all(|(key, child)| match self.property_shared(key) {
                        Some(sub) => member(sub, *child),
                        None => self.additional_properties || also_allowed(key),
                    })
            }
            Shape::Array => {
                let Some(item) = &self.items else {
                    return true;
                };
                let mut children = Vec::with_capacity(8);
                node.children(true, &mut children).is_some()
                    && children.iter().all(|(_, child)| member(item, *child))
            }
            _ => false,
        }
    }

    /// The schema of the property `key`, if this schema declares it.
    pub(crate) fn property(&self, key: &str) -> Option<&Schema> {
        self.property_shared(key).map(|s| &**s)
    }

    /// [`Schema::property`], shared.
    pub(crate) fn property_shared(&self, key: &str) -> Option<&Arc<Schema>> {
        self.properties
            .iter()
            .find(|(n, _)| same_bytes(n.as_bytes(), key.as_bytes()))
            .map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "840",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "18446744073709551615",
            "18446744073709551616",
            "00",
            "01",
            "-01",
            "1.5",
            "1e3",
            "-",
            "",
            "+1",
        ] {
            let ours = number(text).map(|n| n.to_string());
            let theirs = text.parse::<Number>().ok().map(|n| n.to_string());
            assert_eq!(ours, theirs, "{text:?}");
        }
    }
}
