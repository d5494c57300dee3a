//! {{name}}: a Wraith plugin. Masks e-mail addresses in every string of every
//! event; `mask` sets the replacement (default `[email]`).

use wraith_plugin::{Config, ConfigError, Event, Plugin, Verdict};

pub struct {{type}} {
    mask: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "default_mask")]
    mask: String,
}

fn default_mask() -> String {
    "[email]".into()
}

/// Each word that looks like `user@host.domain` replaced by `mask`.
fn mask_emails(text: &str, mask: &str) -> String {
    let email = |w: &str| {
        matches!(w.split_once('@'), Some((user, host)) if !user.is_empty()
            && host.contains('.') && !host.starts_with('.') && !host.ends_with('.'))
    };
    let words: Vec<&str> = text.split(' ').map(|w| if email(w) { mask } else { w }).collect();
    words.join(" ")
}

impl Plugin for {{type}} {
    fn init(config: Config) -> Result<Self, ConfigError> {
        let s: Settings = config.parse()?;
        Ok({{type}} { mask: s.mask })
    }

    fn process(&mut self, event: &mut Event<'_>) -> Verdict {
        let masked: Vec<(String, String)> = event
            .leaves()
            .filter_map(|leaf| {
                let text = leaf.value.as_str()?;
                let m = mask_emails(text, &self.mask);
                (m != text).then(|| (leaf.path.to_string(), m))
            })
            .collect();
        for (path, text) in masked {
            event.set_str(&path, &text);
            wraith_plugin::counter("emails_masked", 1);
        }
        Verdict::Keep
    }
}

wraith_plugin::export!({{type}});

#[cfg(test)]
mod tests {
    use super::*;
    use wraith_plugin::serde_json::json;
    use wraith_plugin::testing::Harness;

    #[test]
    fn masks_emails_in_every_string() {
        let mut h = Harness::<{{type}}>::new(json!({})).unwrap();
        let out = h.run_one(json!({
            "event_type": "login",
            "message": "mail ada@example.com now",
            "context": {"user": "ada@example.com", "os": "linux"}
        }));
        assert_eq!(out.verdict, Verdict::Keep);
        assert_eq!(out.event["message"], "mail [email] now");
        assert_eq!(out.event["context"], json!({"user": "[email]", "os": "linux"}));
        assert_eq!(h.counters()["emails_masked"], 2);
        let err = Harness::<{{type}}>::new(json!({"mask": 5})).err().unwrap();
        assert_eq!(err.field, "mask");
    }
}
