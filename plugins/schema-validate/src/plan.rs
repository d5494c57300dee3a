//! What an event's structure decides, remembered.
//!
//! Whether an event passes its schemas splits in two. Its *structure* — its
//! event type and the paths of its leaves — decides which objects and arrays
//! sit where, which keys are present (`required`), which are unknown
//! (`additionalProperties`), and which schema applies to each leaf. Its
//! *values* decide the rest: each leaf against its schema (`type`, `enum`,
//! `pattern`, lengths, bounds). Telemetry repeats a handful of structures,
//! so walking the schema over the same keys again for every event is work
//! done twice.
//!
//! A [`Plan`] is the walk of [`Validator::accepts`] done once for one
//! structure: whether the structure passed, and the leaf checks it left for
//! the values. [`Plans`] keeps the plans of the last structures seen (a
//! fixed table, direct-mapped by a hash of the structure); an event whose
//! structure is in the table runs only its plan's leaf checks.
//!
//! The answer is always the one [`Validator::accepts`] gives: a plan is used
//! only for the byte-for-byte same event type and leaf paths, its leaf
//! checks are the checks `accepts` makes at those leaves, and an event with
//! a leaf the layout calls other JSON text (which `accepts` treats apart) is
//! handed to `accepts` itself. The tests compare the two on random events.

use std::sync::Arc;

use wraith_plugin::{Leaf, ValueRef};

use crate::flat::{Node, Shape, plain_integer};
use crate::schema::{JsonType, Schema};
use crate::{UnknownEventTypes, Validator};

/// How many structures are remembered (a power of two).
const SLOTS: usize = 64;

/// The root key whose value picks the type's schema.
const EVENT_TYPE: &str = "event_type";

/// Plans for the structures seen last. Empty until the first event; at most
/// [`SLOTS`] plans.
#[derive(Default)]
pub struct Plans {
    slots: Vec<Option<Plan>>,
    /// The structure of the event at hand, written here to be compared.
    key: Vec<u8>,
    hits: u64,
    misses: u64,
}

/// What the walk found for one structure.
struct Plan {
    key: Vec<u8>,
    /// Whether the structure passed; when it did not, no event of this
    /// structure passes.
    structure_ok: bool,
    /// (leaf index, what that leaf must pass).
    checks: Vec<(u32, Check)>,
}

/// A leaf's check, as a plan keeps it: the schema's keywords that can
/// read a leaf, sorted once into the few forms telemetry's schemas take,
/// each answering as [`Schema::accepts_shape`] does.
enum Check {
    /// The schema reads nothing of the value but its JSON type, and none of
    /// its types needs the value read (`number` and `integer` do): one bit
    /// per [`Shape`] a leaf can have ([`kind_bit`]).
    Kinds(u8),
    /// `type: string` and string keywords only (`pattern`, `minLength`,
    /// `maxLength`).
    String(Arc<Schema>),
    /// An `enum` of strings and nothing else (`type: string` aside).
    Strings(Vec<String>),
    /// `type: number` or `integer` and bounds that are integers: a leaf
    /// written as a plain integer is compared without a parse into a JSON
    /// number; any other is left to the schema.
    Integer {
        min: Option<i64>,
        max: Option<i64>,
        schema: Arc<Schema>,
    },
    /// Anything else: the schema's own check.
    Schema(Arc<Schema>),
}

impl Check {
    fn of(schema: &Arc<Schema>) -> Self {
        // Keywords that read something other than a scalar leaf's own kind
        // and text.
        let container = !schema.required.is_empty();
        let string_keywords =
            schema.pattern.is_some() || schema.min_length.is_some() || schema.max_length.is_some();
        let bounds = schema.minimum.is_some() || schema.maximum.is_some();
        if container {
            return Check::Schema(schema.clone());
        }
        let types = &schema.types;
        match &schema.enum_values {
            None if !types.is_empty() && !string_keywords && !bounds => {
                let mut bits = 0;
                for t in types {
                    bits |= match t {
                        JsonType::String => STRING,
                        JsonType::Boolean => BOOL,
                        JsonType::Null => NULL,
                        JsonType::Object => EMPTY_OBJECT,
                        JsonType::Array => EMPTY_ARRAY,
                        JsonType::Number | JsonType::Integer => {
                            return Check::Schema(schema.clone());
                        }
                    };
                }
                Check::Kinds(bits)
            }
            None if types.as_slice() == [JsonType::String] && !bounds => {
                Check::String(schema.clone())
            }
            None if !types.is_empty()
                && types
                    .iter()
                    .all(|t| matches!(t, JsonType::Number | JsonType::Integer))
                && !string_keywords =>
            {
                let bound = |b: &Option<serde_json::Number>| match b {
                    None => Ok(None),
                    Some(n) => n.as_i64().map(Some).ok_or(()),
                };
                match (bound(&schema.minimum), bound(&schema.maximum)) {
                    (Ok(min), Ok(max)) => Check::Integer {
                        min,
                        max,
                        schema: schema.clone(),
                    },
                    _ => Check::Schema(schema.clone()),
                }
            }
            Some(values)
                if (types.is_empty() || types.as_slice() == [JsonType::String])
                    && !string_keywords
                    && !bounds
                    && values.iter().all(|v| v.is_string()) =>
            {
                Check::Strings(
                    values
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                )
            }
            _ => Check::Schema(schema.clone()),
        }
    }

    /// Whether `leaf` passes: [`Schema::accepts_shape`]'s answer.
    fn passes(&self, leaf: &Leaf<'_>) -> bool {
        match (self, leaf.value) {
            (Check::Kinds(bits), value) => bits & kind_bit(value) != 0,
            (Check::String(schema), ValueRef::String(s)) => schema.string_ok(s),
            (Check::String(_), _) => false,
            (Check::Strings(allowed), ValueRef::String(s)) => allowed
                .iter()
                .any(|a| wraith_plugin::same_bytes(a.as_bytes(), s.as_bytes())),
            (Check::Strings(_), _) => false,
            (Check::Integer { min, max, schema }, value) => match value {
                ValueRef::Number(text) => match plain_integer(text) {
                    Some(n) => min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m),
                    None => by_schema(schema, leaf),
                },
                _ => false,
            },
            (Check::Schema(schema), _) => by_schema(schema, leaf),
        }
    }
}

/// [`Schema::accepts_shape`] on one leaf.
fn by_schema(schema: &Schema, leaf: &Leaf<'_>) -> bool {
    let node = Node {
        leaves: std::slice::from_ref(leaf),
        at: leaf.path.len(),
    };
    schema.accepts_shape(node, Shape::of_leaf(leaf.value), None, &|_| false)
}

const STRING: u8 = 1;
const BOOL: u8 = 2;
const NULL: u8 = 4;
const EMPTY_OBJECT: u8 = 8;
const EMPTY_ARRAY: u8 = 16;

/// The bit of a leaf's value among [`Check::Kinds`]' (none for numbers and
/// for other JSON text, which no such check accepts).
fn kind_bit(value: ValueRef<'_>) -> u8 {
    match value {
        ValueRef::String(_) => STRING,
        ValueRef::Bool(_) => BOOL,
        ValueRef::Null => NULL,
        ValueRef::Json("{}") => EMPTY_OBJECT,
        ValueRef::Json("[]") => EMPTY_ARRAY,
        ValueRef::Number(_) | ValueRef::Json(_) => 0,
    }
}

impl Plans {
    /// How many events found their structure's plan, and how many did not.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

impl Validator {
    /// [`Validator::accepts`], with the structural part of the answer
    /// remembered in `plans` (see the module doc).
    pub fn accepts_remembered(&self, leaves: &[Leaf<'_>], plans: &mut Plans) -> bool {
        let mut other_json = false;
        plans.key.clear();
        for leaf in leaves {
            plans.key.extend_from_slice(leaf.path.as_bytes());
            // Neither byte occurs in UTF-8 text.
            plans.key.push(0xFF);
            if wraith_plugin::same_bytes(leaf.path.as_bytes(), EVENT_TYPE.as_bytes()) {
                // The type's schema depends on this value.
                match leaf.value {
                    ValueRef::String(s) => {
                        plans.key.push(b's');
                        plans.key.extend_from_slice(s.as_bytes());
                    }
                    _ => plans.key.push(b'-'),
                }
                plans.key.push(0xFE);
            }
            if let ValueRef::Json(text) = leaf.value {
                other_json |= text != "{}" && text != "[]";
            }
        }
        // The root must be an object with a key (`{}` and scalars are left
        // to `accepts`, as is any layout it would not read).
        let object_root = leaves
            .first()
            .is_some_and(|l| !l.path.is_empty() && !l.path.starts_with('['));
        if other_json || !object_root {
            return self.accepts(leaves);
        }
        if plans.slots.is_empty() {
            plans.slots.resize_with(SLOTS, || None);
        }
        let slot = (hash(&plans.key) as usize) & (SLOTS - 1);
        let plan = match &plans.slots[slot] {
            // Word at a time: `==` on bytes is `memcmp`, a byte loop in
            // WebAssembly, and the key is a few hundred bytes.
            Some(plan) if wraith_plugin::same_bytes(&plan.key, &plans.key) => {
                plans.hits += 1;
                plan
            }
            _ => {
                plans.misses += 1;
                let mut checks = Vec::new();
                let structure_ok = self.walk_structure(leaves, &mut checks);
                plans.slots[slot].insert(Plan {
                    key: plans.key.clone(),
                    structure_ok,
                    checks: checks
                        .iter()
                        .map(|(i, schema)| (*i, Check::of(schema)))
                        .collect(),
                })
            }
        };
        plan.structure_ok
            && plan
                .checks
                .iter()
                .all(|(i, check)| check.passes(&leaves[*i as usize]))
    }

    /// The structural half of [`Validator::accepts`]: `true` when the
    /// structure passes, with the leaf checks left for the values in
    /// `checks`.
    fn walk_structure(&self, leaves: &[Leaf<'_>], checks: &mut Vec<(u32, Arc<Schema>)>) -> bool {
        let root = Node::root(leaves);
        if !matches!(root.shape(), Some(Shape::Object)) {
            return false;
        }
        let mut children = Vec::with_capacity(32);
        if root.children(false, &mut children).is_none() {
            return false;
        }
        let event_type = children
            .iter()
            .find(|(k, _)| *k == EVENT_TYPE)
            .and_then(|(_, node)| match node.shape() {
                Some(Shape::String(s)) => Some(s),
                _ => None,
            });
        let type_schema = event_type.and_then(|t| self.by_type.get(t));
        if type_schema.is_none() && self.unknown_event_types == UnknownEventTypes::Reject {
            return false;
        }
        let walk = Walk { base: leaves };
        let mut member = |sub: &Arc<Schema>, node| walk.member(sub, node, checks);
        if let Some(env) = &self.envelope {
            let allowed = |key: &str| {
                crate::ALWAYS_ALLOWED
                    .iter()
                    .any(|n| wraith_plugin::same_bytes(n.as_bytes(), key.as_bytes()))
                    || type_schema.is_some_and(|s| s.property(key).is_some())
            };
            if !(env.container_ok(&Shape::Object)
                && env.members_ok(root, Shape::Object, Some(&children), &allowed, &mut member))
            {
                return false;
            }
        }
        match type_schema {
            Some(schema) => {
                schema.container_ok(&Shape::Object)
                    && schema.members_ok(
                        root,
                        Shape::Object,
                        Some(&children),
                        &|key| {
                            self.envelope_keys
                                .iter()
                                .any(|n| wraith_plugin::same_bytes(n.as_bytes(), key.as_bytes()))
                        },
                        &mut member,
                    )
            }
            None => true,
        }
    }
}

/// The structural walk over one event's leaves.
struct Walk<'l, 'a> {
    base: &'l [Leaf<'a>],
}

impl<'l, 'a> Walk<'l, 'a> {
    /// A member under `schema`: a leaf leaves a check; an object or an
    /// array is walked, its keys checked as [`Schema::accepts_shape`]
    /// checks them.
    fn member(
        &self,
        schema: &Arc<Schema>,
        node: Node<'l, 'a>,
        checks: &mut Vec<(u32, Arc<Schema>)>,
    ) -> bool {
        let Some(first) = node.leaves.first() else {
            return false;
        };
        if first.path.len() == node.at {
            if node.leaves.len() != 1 {
                return false;
            }
            if !passes_every_leaf(schema) {
                let index = (node.leaves.as_ptr() as usize - self.base.as_ptr() as usize)
                    / std::mem::size_of::<Leaf<'_>>();
                checks.push((index as u32, schema.clone()));
            }
            return true;
        }
        match node.shape() {
            Some(shape @ (Shape::Object | Shape::Array)) => {
                schema.container_ok(&shape)
                    && schema.members_ok(node, shape, None, &|_| false, &mut |sub, n| {
                        self.member(sub, n, checks)
                    })
            }
            _ => false,
        }
    }
}

/// Whether every leaf that is not other JSON text passes `schema`: no
/// keyword of it reads a scalar, and an empty object needs no key.
fn passes_every_leaf(schema: &Schema) -> bool {
    schema.types.is_empty()
        && schema.enum_values.is_none()
        && schema.pattern.is_none()
        && schema.min_length.is_none()
        && schema.max_length.is_none()
        && schema.minimum.is_none()
        && schema.maximum.is_none()
        && schema.required.is_empty()
}

/// FxHash over the structure, eight bytes at a time.
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ b as u64).wrapping_mul(K);
    }
    h ^ (h >> 29)
}
