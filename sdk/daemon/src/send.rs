//! One HTTP request per batch to the gateway's `POST /v1/events`, and what
//! its answer means for the batch: done, try again later, or give up.

use std::time::Duration;
use wraith_event::wire::{BatchAnswer, ErrorBody};

/// What became of one batch.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The gateway answered 2xx: every event is stored, dropped on purpose,
    /// dead-lettered or refused as invalid (the counts say which).
    Sent(BatchAnswer),
    /// Not delivered; worth sending again (unreachable, timeout, 408, 429,
    /// 5xx). `after` is the gateway's `Retry-After`, when it gave one.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Refused for good (4xx other than 408 and 429): sending it again would
    /// get the same answer.
    Refused { status: u16, why: String },
}

pub struct Client {
    agent: ureq::Agent,
    url: String,
    token: Option<String>,
}

/// `<base>/v1/events`, unless the URL already ends so.
pub fn events_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/events") {
        e.to_string()
    } else {
        format!("{e}/v1/events")
    }
}

impl Client {
    pub fn new(endpoint: &str, timeout: Duration, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("wraith-daemon/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            agent,
            url: events_url(endpoint),
            token,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn post(&self, body: &[u8]) -> Result<(u16, Option<String>, Vec<u8>), ureq::Error> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("content-type", "application/x-ndjson");
        if let Some(t) = &self.token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.send(body)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap_or_default();
        Ok((status, retry_after, answer))
    }

    pub fn send(&self, body: &[u8]) -> Outcome {
        match self.post(body) {
            Ok((status, retry_after, answer)) => classify(status, retry_after.as_deref(), &answer),
            Err(e) => Outcome::Retry {
                after: None,
                why: describe(&e, &self.url),
            },
        }
    }
}

/// The meaning of an answer.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> Outcome {
    match status {
        200..=299 => Outcome::Sent(serde_json::from_slice(body).unwrap_or_default()),
        408 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after.and_then(parse_retry_after),
            why: format!("gateway answered {status}{}", message(body)),
        },
        _ => Outcome::Refused {
            status,
            why: format!("gateway answered {status}{}", message(body)),
        },
    }
}

/// `: <message>` from an error body or a batch answer's first error.
pub fn message(body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(body) {
        return format!(": {} ({})", e.error.message, e.error.code);
    }
    if let Ok(a) = serde_json::from_slice::<BatchAnswer>(body)
        && let Some(first) = a.errors.first()
    {
        return format!(
            ": {} invalid event(s), the first (index {}): {}",
            a.invalid, first.index, first.message
        );
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {}", text.chars().take(200).collect::<String>())
    }
}

/// `Retry-After` in seconds (the gateway's form). An HTTP date is not
/// parsed; the daemon's own backoff applies then.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

/// A transport error in words that say what to fix.
pub fn describe(e: &ureq::Error, url: &str) -> String {
    use ureq::Error as E;
    match e {
        E::HostNotFound => format!("DNS: the host of {url} was not found"),
        E::ConnectionFailed => format!("could not connect to {url}"),
        E::Timeout(ureq::Timeout::Resolve) => {
            format!("DNS: looking up the host of {url} timed out")
        }
        E::Timeout(t) => format!("timed out ({t}) talking to {url}"),
        E::Tls(m) => format!("TLS: {m} ({url})"),
        E::Rustls(r) => format!("TLS: {r} ({url})"),
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                format!("connection refused by {url}: is the gateway running and listening there?")
            }
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::InvalidData
                if url.starts_with("https:") =>
            {
                format!(
                    "TLS: the handshake with {url} failed ({io}); does the gateway speak HTTPS there?"
                )
            }
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => format!(
                "connection to {url} closed before an answer (if the gateway speaks HTTPS, use https://): {io}"
            ),
            // The resolver's failure reaches us as an I/O error of no
            // particular kind ("failed to lookup address information").
            _ if io.to_string().contains("lookup address") => {
                format!("DNS: the host of {url} was not found ({io})")
            }
            _ => format!("{io} ({url})"),
        },
        E::BadUri(m) => format!("bad endpoint URL {url:?}: {m}"),
        other => format!("{other} ({url})"),
    }
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s … up to `max`, each
/// scaled by a random factor in [0.5, 1).
pub struct Backoff {
    attempt: u32,
    max: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        let seed = u64::from(std::process::id()) << 32 ^ crate::time::unix_ms();
        Backoff {
            attempt: 0,
            max,
            rng: seed | 1,
        }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The wait before the next attempt; at least `floor` (a `Retry-After`).
    pub fn next(&mut self, floor: Option<Duration>) -> Duration {
        let base = Duration::from_secs(1)
            .saturating_mul(1 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = 0.5 + (self.rng >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
        let d = base.mul_f64(jitter);
        match floor {
            Some(f) if f > d => f,
            _ => d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let ok = br#"{"accepted":2,"dropped":0,"dead_lettered":1,"invalid":0,"event_ids":["a","b","c"],"errors":[]}"#;
        match classify(200, None, ok) {
            Outcome::Sent(a) => assert_eq!((a.accepted, a.dead_lettered), (2, 1)),
            o => panic!("{o:?}"),
        }
        assert_eq!(
            classify(
                503,
                Some("5"),
                br#"{"error":{"code":"unavailable","message":"disk full"}}"#
            ),
            Outcome::Retry {
                after: Some(Duration::from_secs(5)),
                why: "gateway answered 503: disk full (unavailable)".into()
            }
        );
        assert!(matches!(
            classify(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b""),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(classify(408, None, b""), Outcome::Retry { .. }));
        let all_invalid = br#"{"accepted":0,"dropped":0,"dead_lettered":0,"invalid":1,"event_ids":[null],"errors":[{"index":0,"field":"event_type","message":"field `event_type` must not be empty"}]}"#;
        assert_eq!(
            classify(400, None, all_invalid),
            Outcome::Refused {
                status: 400,
                why: "gateway answered 400: 1 invalid event(s), the first (index 0): field `event_type` must not be empty".into()
            }
        );
        assert!(matches!(
            classify(401, None, b"no"),
            Outcome::Refused { status: 401, .. }
        ));
        assert!(matches!(
            classify(413, None, b""),
            Outcome::Refused { status: 413, .. }
        ));
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let mut b = Backoff::new(Duration::from_secs(8));
        let waits: Vec<Duration> = (0..8).map(|_| b.next(None)).collect();
        for (i, w) in waits.iter().enumerate() {
            let base = Duration::from_secs((1u64 << i).min(8));
            assert!(*w >= base / 2 && *w < base, "{i}: {w:?}");
        }
        assert_eq!(
            b.next(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        b.reset();
        assert!(b.next(None) < Duration::from_secs(1));
    }

    #[test]
    fn urls() {
        assert_eq!(events_url("http://h:1/"), "http://h:1/v1/events");
        assert_eq!(events_url("http://h:1/v1/events"), "http://h:1/v1/events");
    }
}
