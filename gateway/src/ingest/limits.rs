//! What one event and one client may send: the shape limits every decoded
//! event is checked against (depth, string length, number of values) and
//! the per-client token buckets.

use super::ApiError;
use super::decode::Refused;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The shape limits of one event.
#[derive(Debug, Clone)]
pub struct EventLimits {
    /// `limits.max_depth`: the event object itself is level 1.
    pub max_depth: usize,
    /// `limits.max_string_length`, in bytes, for values and keys.
    pub max_string: usize,
    /// `limits.max_fields_per_event`: object members and array elements at every depth.
    pub max_values: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        let c = crate::config::LimitsConfig::default();
        EventLimits::from_config(&c)
    }
}

impl EventLimits {
    pub fn from_config(c: &crate::config::LimitsConfig) -> Self {
        EventLimits {
            max_depth: c.max_depth,
            max_string: c.max_string_length.as_u64() as usize,
            max_values: c.max_fields_per_event,
        }
    }
}

/// Check one event against the limits; the refusal names the first value
/// past a limit by its dotted path.
pub fn check_event(event: &Value, limits: &EventLimits) -> Result<(), Refused> {
    let mut count = 0usize;
    walk(event, 1, &mut String::new(), limits, &mut count)
}

fn top_field(path: &str) -> String {
    path.split(['.', '[']).next().unwrap_or("").to_string()
}

fn walk(
    v: &Value,
    depth: usize,
    path: &mut String,
    limits: &EventLimits,
    count: &mut usize,
) -> Result<(), Refused> {
    let refuse = |path: &str, message: String| Refused {
        field: top_field(path),
        message,
    };
    let shown = |path: &str| {
        if path.is_empty() {
            "the event".to_string()
        } else {
            format!("`{path}`")
        }
    };
    match v {
        Value::String(s) if s.len() > limits.max_string => Err(refuse(
            path.as_str(),
            format!(
                "{} is a string of {} bytes; at most {} are accepted (limits.max_string_length)",
                shown(path),
                s.len(),
                limits.max_string
            ),
        )),
        Value::Array(_) | Value::Object(_) if depth > limits.max_depth => Err(refuse(
            path.as_str(),
            format!(
                "{} nests deeper than {} levels (limits.max_depth)",
                shown(path),
                limits.max_depth
            ),
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                *count += 1;
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if *count > limits.max_values {
                    return Err(too_many(path, limits));
                }
                walk(item, depth + 1, path, limits, count)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                *count += 1;
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                if k.len() > limits.max_string {
                    path.push_str(&k[..k.floor_char_boundary(40)]);
                    return Err(refuse(
                        path.as_str(),
                        format!(
                            "a key of {} bytes (starting `{}`) is longer than {} bytes (limits.max_string_length)",
                            k.len(),
                            &k[..k.floor_char_boundary(40)],
                            limits.max_string
                        ),
                    ));
                }
                if k.is_empty() {
                    return Err(refuse(
                        path.as_str(),
                        format!(
                            "{} has a member whose key is empty; plugins address values by path and no path names an empty key, so no scrubber could reach its value",
                            if path.is_empty() {
                                "the event".to_string()
                            } else {
                                format!("`{}`", path.trim_end_matches('.'))
                            }
                        ),
                    ));
                }
                path.push_str(k);
                if *count > limits.max_values {
                    return Err(too_many(path, limits));
                }
                walk(item, depth + 1, path, limits, count)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn too_many(path: &str, limits: &EventLimits) -> Refused {
    Refused {
        field: top_field(path),
        message: format!(
            "the event holds more than {} values (object members and array elements; limits.max_fields_per_event), the first one past it at `{path}`",
            limits.max_values
        ),
    }
}

/// Per-client token buckets (`limits.requests_per_second`, `limits.burst`),
/// keyed by the client name, or by the peer address without tokens.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<Arc<str>>,
    per_second: u32,
}

impl RateLimits {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Arc<RateLimits>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        let limiter = RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst));
        Some(Arc::new(RateLimits {
            limiter,
            per_second,
        }))
    }

    /// Take one request from `key`'s bucket, or say how long to wait.
    pub fn check(&self, key: &Arc<str>) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forget buckets that are full again, so that a stream of new peer
    /// addresses does not grow the map forever.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// The 429 answer for a client that must wait `wait`.
    pub fn refusal(&self, client: &str, wait: Duration) -> Response {
        // Retry-After is whole seconds; never 0, which would invite a retry storm.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "client `{client}` sends more than {} requests per second (limits.requests_per_second); retry in {secs} s",
                self.per_second
            ),
        )
        .into_response();
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(event: Value, expected: Result<(), &str>) {
        let limits = EventLimits {
            max_depth: 4,
            max_string: 10,
            max_values: 6,
        };
        match (check_event(&event, &limits), expected) {
            (Ok(()), Ok(())) => {}
            (Err(r), Err(needle)) => assert!(r.message.contains(needle), "{r:?} lacks {needle:?}"),
            (got, want) => panic!("{event}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn limits_name_the_value() {
        check(json!({"a": {"b": {"c": {"d": 1}}}}), Ok(()));
        check(
            json!({"a": {"b": {"c": {"d": {"e": 1}}}}}),
            Err("`a.b.c.d` nests deeper than 4 levels"),
        );
        check(json!({"a": [[[1]]]}), Ok(()));
        check(json!({"a": [[[[1]]]]}), Err("`a[0][0][0]` nests deeper"));
        check(json!({"s": "0123456789"}), Ok(()));
        check(
            json!({"s": "0123456789x"}),
            Err("`s` is a string of 11 bytes; at most 10"),
        );
        check(
            json!({"0123456789x": 1}),
            Err("a key of 11 bytes (starting `0123456789x`)"),
        );
        check(
            json!({"": "ada@example.com"}),
            Err("the event has a member whose key is empty"),
        );
        check(
            json!({"ctx": {"a": [{"": 1}]}}),
            Err("`ctx.a[0]` has a member whose key is empty"),
        );
        check(json!({"a": [1, 2, 3, 4, 5]}), Ok(()));
        check(
            json!({"a": [1, 2, 3, 4, 5, 6]}),
            Err(
                "more than 6 values (object members and array elements; limits.max_fields_per_event), the first one past it at `a[5]`",
            ),
        );
        let r = check_event(
            &json!({"ctx": {"s": "0123456789x"}}),
            &EventLimits {
                max_depth: 4,
                max_string: 10,
                max_values: 6,
            },
        )
        .unwrap_err();
        assert_eq!(r.field, "ctx");
    }

    #[test]
    fn buckets_refill_per_client() {
        let r = RateLimits::new(1, 2).unwrap();
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        assert!(r.check(&a).is_ok());
        assert!(r.check(&a).is_ok());
        let wait = r.check(&a).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        // Another client has its own bucket.
        assert!(r.check(&b).is_ok());
        let resp = r.refusal("a", wait);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert!(RateLimits::new(0, 5).is_none());
    }
}
