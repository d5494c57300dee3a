//! What parsing request bodies straight into the flat layout would save,
//! measured before building it: the gateway today parses a body into
//! `serde_json` values (the DOM its ingest checks read) and, when a plugin
//! runs, encodes them into the flat layout (`FlatBatch::encode`). The
//! prototype here (in this file only, not used by the gateway) reads the
//! same body once with `serde_json`'s streaming deserializer and writes each
//! leaf straight into a `FlatBatch`: no values, no maps, no second walk.
//!
//! On the realistic bodies of the gateway's end-to-end bench (100 events of
//! `gateway/benches/support/` per body, ~750 bytes each), taking turns:
//! the DOM parse alone, the DOM parse and the encoding, and the direct
//! parse. The direct parse's batches are checked equal to the encoder's
//! first, leaf for leaf. What it leaves out, and a real one must do: keys
//! repeated in one object (the DOM keeps the last value at the first key's
//! place), the ingest's checks (limits, `event_id`, `timestamp`, `level`),
//! which read the DOM today.
//!
//! `cargo bench -p wraith-event --bench parse` (`WRAITH_BENCH_SECS`,
//! default 3, over 15 rounds); `WRAITH_BENCH_PROFILE=<n>:dom|encode|direct`
//! runs one of them `n` passes, for `valgrind --tool=callgrind`.

mod common;

use common::events;

use std::fmt;
use std::hint::black_box;
use std::time::Instant;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use wraith_event::flat::{FlatBatch, LEAF_WORDS, kind};
use wraith_event::path;

/// One way of reading a body: the events it read.
type Way<'f> = (&'static str, &'f dyn Fn(&[u8]) -> usize);

const BATCH: usize = 100;
const BODIES: usize = 8;
const ROUNDS: usize = 15;

/// Where the leaves go: the batch, the path being built, a number's text.
struct Out<'b> {
    batch: &'b mut FlatBatch,
    path: String,
    number: String,
}

impl Out<'_> {
    fn leaf(&mut self, kind: u32, value: &[u8]) {
        let b = &mut *self.batch;
        let path_off = b.data.len() as u32;
        b.data.extend_from_slice(self.path.as_bytes());
        let val_off = b.data.len() as u32;
        b.data.extend_from_slice(value);
        b.leaves.extend_from_slice(&[
            path_off,
            self.path.len() as u32,
            kind,
            val_off,
            value.len() as u32,
        ]);
    }

    fn number(&mut self, n: serde_json::Number) {
        use fmt::Write as _;
        self.number.clear();
        let _ = write!(self.number, "{n}");
        let text = std::mem::take(&mut self.number);
        self.leaf(kind::NUMBER, text.as_bytes());
        self.number = text;
    }
}

/// One JSON value at the current path.
struct Leaves<'o, 'b>(&'o mut Out<'b>);

impl<'de> DeserializeSeed<'de> for Leaves<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Leaves<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.leaf(kind::NULL, b"");
        Ok(())
    }
    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.0.leaf(if b { kind::TRUE } else { kind::FALSE }, b"");
        Ok(())
    }
    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.0.number(n.into());
        Ok(())
    }
    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.0.number(n.into());
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<(), E> {
        let n = serde_json::Number::from_f64(n).ok_or_else(|| E::custom("not a JSON number"))?;
        self.0.number(n);
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.0.leaf(kind::STRING, s.as_bytes());
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.0.path.len();
        let mut i = 0;
        loop {
            path::push_index(&mut self.0.path, i);
            let more = seq.next_element_seed(Leaves(&mut *self.0))?.is_some();
            self.0.path.truncate(at);
            if !more {
                break;
            }
            i += 1;
        }
        if i == 0 {
            self.0.leaf(kind::JSON, b"[]");
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.0.path.len();
        let mut n = 0;
        while map.next_key_seed(Key(&mut self.0.path))?.is_some() {
            map.next_value_seed(Leaves(&mut *self.0))?;
            self.0.path.truncate(at);
            n += 1;
        }
        if n == 0 {
            self.0.leaf(kind::JSON, b"{}");
        }
        Ok(())
    }
}

/// A key, written onto the path as the layout writes keys.
struct Key<'p>(&'p mut String);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        path::push_key(self.0, s);
        Ok(())
    }
}

/// A body's array of events.
struct Events<'o, 'b>(&'o mut Out<'b>);

impl<'de> Visitor<'de> for Events<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let first = (self.0.batch.leaves.len() / LEAF_WORDS) as u32;
            self.0.path.clear();
            if seq.next_element_seed(Leaves(&mut *self.0))?.is_none() {
                return Ok(());
            }
            let count = (self.0.batch.leaves.len() / LEAF_WORDS) as u32 - first;
            self.0.batch.events.extend_from_slice(&[first, count]);
        }
    }
}

fn direct(body: &[u8]) -> FlatBatch {
    let mut batch = FlatBatch::with_capacity(BATCH);
    let mut out = Out {
        batch: &mut batch,
        path: String::with_capacity(64),
        number: String::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_seq(Events(&mut out)).expect("a JSON array");
    de.end().expect("nothing after the array");
    batch
}

fn main() {
    if common::listing() {
        return;
    }
    let secs = common::secs(3.0);
    let bodies: Vec<Vec<u8>> = (0..BODIES)
        .map(|b| serde_json::to_vec(&events::events(b * BATCH, BATCH)).expect("serialises"))
        .collect();
    let events_per_pass = (BODIES * BATCH) as f64;
    let bytes = bodies.iter().map(Vec::len).sum::<usize>() as f64 / events_per_pass;

    // The same leaves, event by event.
    for body in &bodies {
        let values: Vec<Value> = serde_json::from_slice(body).expect("JSON");
        let encoded = FlatBatch::encode(&values);
        let parsed = direct(body);
        let (a, b) = (encoded.view(), parsed.view());
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            let (x, y): (Vec<_>, Vec<_>) =
                (a.event(i).leaves().collect(), b.event(i).leaves().collect());
            assert_eq!(x, y, "event {i}");
        }
    }

    let dom =
        |body: &[u8]| black_box(serde_json::from_slice::<Vec<Value>>(body).expect("JSON")).len();
    let encode = |body: &[u8]| {
        let values: Vec<Value> = serde_json::from_slice(body).expect("JSON");
        black_box(FlatBatch::encode(&values)).len()
    };
    let parse = |body: &[u8]| black_box(direct(body)).len();
    let ways: [Way; 3] = [("dom", &dom), ("encode", &encode), ("direct", &parse)];

    if let Ok(what) = std::env::var("WRAITH_BENCH_PROFILE") {
        let (n, which) = what.split_once(':').expect("<n>:dom|encode|direct");
        let f = ways
            .iter()
            .find(|(w, _)| *w == which)
            .expect("dom, encode or direct")
            .1;
        for _ in 0..n.parse::<usize>().expect("a number of passes") {
            for body in &bodies {
                f(body);
            }
        }
        return;
    }

    let per = secs / ROUNDS as f64 / ways.len() as f64;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); ways.len()];
    for _ in 0..ROUNDS {
        for (k, (_, f)) in ways.iter().enumerate() {
            let start = Instant::now();
            let mut passes = 0u64;
            while start.elapsed().as_secs_f64() < per {
                for body in &bodies {
                    f(body);
                }
                passes += 1;
            }
            times[k].push(start.elapsed().as_nanos() as f64 / (passes as f64 * events_per_pass));
        }
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio = |a: usize, b: usize| {
        let mut r: Vec<f64> = times[a].iter().zip(&times[b]).map(|(x, y)| x / y).collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    println!(
        "request bodies of {BATCH} realistic events ({bytes:.0} bytes each): median of {ROUNDS} rounds"
    );
    println!(
        "  parse into serde_json values              {:>6.0} ns/event",
        median(&times[0])
    );
    println!(
        "  parse into values, then encode the batch  {:>6.0} ns/event",
        median(&times[1])
    );
    println!(
        "  parse straight into the flat layout        {:>6.0} ns/event   {:.2}x the two steps, {:.2}x the parse alone",
        median(&times[2]),
        ratio(2, 1),
        ratio(2, 0)
    );
}
