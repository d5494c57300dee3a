//! Limits through real sockets: per-client rate limits, body size before and
//! after decompression, event shape, header size, slow clients.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub const LIMITS: &str = "[limits]\nmax_wire_body_size = \"64 KiB\"\nmax_depth = 8\nmax_string_length = \"1 KiB\"\nmax_fields_per_event = 50\nmax_header_size = \"8 KiB\"\nheader_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"\n[server]\nmax_body_size = \"256 KiB\"\n";

pub fn limited_gateway() -> Gateway {
    Gateway::start_with(Options {
        extra_config: LIMITS.into(),
        ..Default::default()
    })
}

/// The host:port of a gateway.
pub fn addr(gw: &Gateway) -> String {
    gw.url.trim_start_matches("http://").to_string()
}

/// Send raw bytes on a new connection and read the answer until the
/// server closes or `wait` passes.
pub fn raw(gw: &Gateway, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr(gw)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let start = Instant::now();
    while start.elapsed() < wait {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if response_complete(&out) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn response_complete(b: &[u8]) -> bool {
    let text = String::from_utf8_lossy(b);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|n| n.trim().parse::<usize>().unwrap_or(0))
        })
        .is_some_and(|n| body.len() >= n)
}

/// `/health` answers, on a fresh connection: a pooled one may have been
/// closed by the gateway while idle (the short `header_read_timeout` of
/// these tests), and reusing it would race that close.
pub fn healthy(gw: &Gateway) {
    let fresh = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let v: serde_json::Value = fresh
        .get(format!("{}/health", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["status"], "ok");
}

#[test]
fn per_client_token_buckets() {
    let gw = Gateway::start_with(Options {
        extra_config: "[auth]\ntokens = [\"flood:tok-a\", \"calm:tok-b\"]\n[limits]\nrequests_per_second = 1\nburst = 2\n".into(),
        ..Default::default()
    });
    let post = |token: &str| {
        let r = gw
            .http
            .post(format!("{}/v1/events", gw.url))
            .header("x-api-key", token)
            .header("content-type", "application/json")
            .body(event(1).to_string())
            .send()
            .unwrap();
        let s = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (s, retry, r.json::<Value>().unwrap_or(Value::Null))
    };
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..6 {
        let (s, retry, body) = post("tok-a");
        statuses.push(s);
        if s == 429 {
            refusal = Some((retry, body));
        }
    }
    assert_eq!(&statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let (retry, body) = refusal.unwrap();
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client `flood` sends more than 1 requests per second"),
        "{body}"
    );
    // The other client has its own bucket.
    assert_eq!(post("tok-b").0, 200);
    // After the wait the flooding client may send again.
    std::thread::sleep(Duration::from_secs(secs));
    assert_eq!(post("tok-a").0, 200);
    let m = gw.get_text("/metrics");
    assert!(
        m.contains("wraith_requests_refused_total{reason=\"rate_limited\"}"),
        "{m}"
    );
    assert!(m.contains("wraith_rate_limited_requests_total"), "{m}");
}

#[test]
fn sizes_shapes_headers_and_slow_clients() {
    let gw = limited_gateway();
    let post = |body: Vec<u8>, enc: Option<&str>| {
        gw.post_raw("/v1/events", Some("application/json"), enc, body)
    };
    // Past the wire limit, declared.
    let big = json!([{"event_type": "x", "pad": "y".repeat(70 * 1024)}]).to_string();
    let (s, a, _) = post(big.clone().into_bytes(), None);
    assert_eq!(s, 413, "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_wire_body_size"),
        "{a}"
    );
    // Past the wire limit, chunked (no Content-Length).
    let mut req = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in big.as_bytes().chunks(8192) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(&gw, &req, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("limits.max_wire_body_size"), "{answer}");
    healthy(&gw);
    // A gzip bomb: 16 MiB of zeros in a few KiB; refused at the inflated limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"[{\"event_type\":\"x\",\"pad\":\"").unwrap();
    let zeros = vec![b'0'; 1024 * 1024];
    for _ in 0..16 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let (s, a, _) = post(bomb, Some("gzip"));
    assert_eq!(s, 413, "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.max_body_size; measured after decompression"),
        "{a}"
    );
    healthy(&gw);
    // Event shapes: the bad ones are named, the good one of the batch kept.
    let deep = (0..9).fold(json!(1), |v, _| json!({"a": v}));
    let wide: serde_json::Map<String, Value> =
        (0..60).map(|i| (format!("k{i}"), json!(i))).collect();
    let batch = json!([
        event(1),
        {"event_type": "x", "deep": deep},
        {"event_type": "x", "s": "z".repeat(2000)},
        {"event_type": "x", "wide": wide},
        {"event_type": "x", "context": {"": "ada@example.com"}},
    ]);
    let (s, a, _) = post(batch.to_string().into_bytes(), None);
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        (a["accepted"].as_u64(), a["invalid"].as_u64()),
        (Some(1), Some(4)),
        "{a}"
    );
    let msgs: Vec<&str> = a["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs[0].contains("nests deeper than 8 levels (limits.max_depth)"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].contains("`s` is a string of 2000 bytes; at most 1024"),
        "{msgs:?}"
    );
    assert!(msgs[2].contains("more than 50 values"), "{msgs:?}");
    assert!(
        msgs[3].contains("`context` has a member whose key is empty"),
        "{msgs:?}"
    );
    assert_eq!(a["errors"][3]["field"], "context");
    assert_eq!(a["errors"][0]["field"], "deep");
    // 10,000 levels: refused while parsing, without a stack overflow.
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (s, a, _) = post(nested.into_bytes(), None);
    assert_eq!(s, 400, "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit exceeded"),
        "{a}"
    );
    healthy(&gw);
    // A head past max_header_size: 431.
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nContent-Length: 2\r\n\r\n[]",
        "p".repeat(10 * 1024)
    );
    let answer = raw(&gw, head.as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    healthy(&gw);
    // Slow clients: a head that never ends is cut off; a body that never
    // comes is answered 408; /health answers meanwhile.
    let mut slow_head = TcpStream::connect(addr(&gw)).unwrap();
    slow_head
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut slow_body = TcpStream::connect(addr(&gw)).unwrap();
    slow_body
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"event")
        .unwrap();
    healthy(&gw);
    let start = Instant::now();
    slow_head
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = slow_head.read_to_end(&mut buf);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "the slow head was not cut off"
    );
    slow_body
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = slow_body.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("limits.body_read_timeout"), "{answer}");
    healthy(&gw);
    // Nothing of the refused requests was stored; the good event was.
    assert_eq!(gw.lines("events").len(), 1);
}
