//! The two routes of a request body into the flat layout, on the realistic
//! bodies of the gateway's end-to-end bench (100 events of
//! `gateway/benches/support/` per body, ~750 bytes each), taking turns:
//!
//! - the DOM parse alone (`serde_json` values), for scale;
//! - the general route: values, the ingest's checks and defaults
//!   (`validate::normalize`), then the encoder (`FlatBatch::encode`);
//! - the fast route (`wraith_event::body::json_array`): the body read once
//!   with `serde_json`'s streaming deserializer, each leaf written straight
//!   into the batch, the same checks and defaults on the way.
//!
//! The fast route's batches are checked equal to the general route's
//! first, leaf for leaf. (The gateway's general route also walks each value
//! for the shape limits, which is not counted here.)
//!
//! `cargo bench -p wraith-event --bench parse` (`WRAITH_BENCH_SECS`,
//! default 3, over 15 rounds); `WRAITH_BENCH_PROFILE=<n>:dom|encode|direct`
//! runs one of them `n` passes, for `valgrind --tool=callgrind`.

mod common;

use common::events;

use std::hint::black_box;
use std::time::Instant;

use serde_json::Value;
use time::OffsetDateTime;
use wraith_event::body::{self, Rules};
use wraith_event::flat::FlatBatch;
use wraith_event::validate;

/// One way of reading a body: the events it read.
type Way<'f> = (&'static str, &'f dyn Fn(&[u8]) -> usize);

const BATCH: usize = 100;
const BODIES: usize = 8;
const ROUNDS: usize = 15;

fn rules() -> Rules<'static> {
    Rules {
        max_depth: 32,
        max_string: 1 << 20,
        max_values: 10_000,
        max_events: 10_000,
        client_field: "_client",
        client: None,
        now: OffsetDateTime::UNIX_EPOCH,
    }
}

/// The general route: values, the ingest's checks and defaults, the encoder.
fn general(body: &[u8]) -> FlatBatch {
    let values: Vec<Value> = serde_json::from_slice(body).expect("JSON");
    let values: Vec<Value> = values
        .into_iter()
        .map(|v| validate::normalize(v, OffsetDateTime::UNIX_EPOCH).expect("valid"))
        .collect();
    FlatBatch::encode(&values)
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
        let encoded = general(body);
        let parsed = body::json_array(body, &rules()).expect("the fast route takes it");
        let (a, b) = (encoded.view(), parsed.batch.view());
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            let (x, y): (Vec<_>, Vec<_>) =
                (a.event(i).leaves().collect(), b.event(i).leaves().collect());
            assert_eq!(x, y, "event {i}");
        }
    }

    let dom =
        |body: &[u8]| black_box(serde_json::from_slice::<Vec<Value>>(body).expect("JSON")).len();
    let encode = |body: &[u8]| black_box(general(body)).len();
    let rules = rules();
    let parse = |body: &[u8]| {
        black_box(body::json_array(body, &rules).expect("valid"))
            .batch
            .len()
    };
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
        "  values, checks and defaults, encoding     {:>6.0} ns/event",
        median(&times[1])
    );
    println!(
        "  the fast route, straight into the layout  {:>6.0} ns/event   {:.2}x the general route, {:.2}x the parse alone",
        median(&times[2]),
        ratio(2, 1),
        ratio(2, 0)
    );
}
