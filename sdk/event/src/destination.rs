//! Destination names: the one rule for what a plugin may route to.
//!
//! A destination is a logical name (`errors`, `audit`); the gateway's config
//! maps it to a place per sink (a folder of the file sink, a NATS subject, a
//! ClickHouse table). The host checks every `route` verdict with [`check`] and
//! the plugin SDK checks route configs with it, so both agree.

/// Where events go that no plugin routed.
pub const DEFAULT: &str = "events";

/// The dead-letter queue: reached by rejecting an event, never by routing.
pub const DLQ: &str = "dlq";

/// The longest destination name, in bytes.
pub const MAX_LEN: usize = 64;

/// Whether `name` is an acceptable destination: `[a-z0-9_-]`, 1 to
/// [`MAX_LEN`] bytes, and not [`DLQ`]. The error says what is wrong.
pub fn check(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LEN {
        return Err(format!(
            "a destination is 1 to {MAX_LEN} bytes, got {}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "destination {:?} may only use a-z, 0-9, `_` and `-`",
            name.chars().take(80).collect::<String>()
        ));
    }
    if name == DLQ {
        return Err("`dlq` is the dead-letter queue; reject events to send them there".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["events", "errors", "a", "team-a_2", &"x".repeat(MAX_LEN)] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("", "1 to 64 bytes"),
            (&"x".repeat(MAX_LEN + 1) as &str, "1 to 64 bytes"),
            ("Errors", "a-z, 0-9"),
            ("a.b", "a-z, 0-9"),
            ("a/b", "a-z, 0-9"),
            ("dlq", "dead-letter queue"),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
