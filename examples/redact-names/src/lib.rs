//! Redacts internal host and project names from every string of an event.
//!
//! ```toml
//! [plugins.redact-names.config]
//! names = ["project-atlas", "Hydra"]        # matched case-insensitively, as whole words
//! host_suffixes = [".corp", ".internal"]    # any host name ending in one of these
//! placeholder = "[internal]"                # default "[redacted]"
//! ```

use wraith_plugin::{Config, ConfigError, Event, Plugin, Verdict};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    host_suffixes: Vec<String>,
    #[serde(default = "default_placeholder")]
    placeholder: String,
}

fn default_placeholder() -> String {
    "[redacted]".into()
}

pub struct RedactNames {
    names: Vec<String>,
    suffixes: Vec<String>,
    placeholder: String,
}

impl Plugin for RedactNames {
    fn init(config: Config) -> Result<Self, ConfigError> {
        let s: Settings = config.parse()?;
        if s.names.is_empty() && s.host_suffixes.is_empty() {
            return Err(ConfigError::new(
                "names",
                "give at least one name or host suffix to redact",
            ));
        }
        if let Some(i) = s
            .host_suffixes
            .iter()
            .position(|x| !x.starts_with('.') || x.len() < 2)
        {
            return Err(ConfigError::new(
                format!("host_suffixes[{i}]"),
                "must look like \".corp\"",
            ));
        }
        Ok(RedactNames {
            names: s.names.iter().map(|n| n.to_lowercase()).collect(),
            suffixes: s.host_suffixes.iter().map(|n| n.to_lowercase()).collect(),
            placeholder: s.placeholder,
        })
    }

    fn process(&mut self, event: &mut Event<'_>) -> Verdict {
        let mut changes = Vec::new();
        for leaf in event.leaves() {
            if let Some(text) = leaf.value.as_str()
                && let Some(clean) = self.redact(text)
            {
                changes.push((leaf.path, clean));
            }
        }
        if !changes.is_empty() {
            wraith_plugin::counter("names_redacted", changes.len() as u64);
        }
        for (path, clean) in changes {
            event.set_str(path, &clean);
        }
        Verdict::Keep
    }
}

impl RedactNames {
    /// The text with every configured name and internal host replaced, or
    /// `None` when there is nothing to redact.
    pub fn redact(&self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        // Words are runs of characters that can form a host or project name.
        let is_word = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
        let mut rest = text;
        while let Some(start) = rest.find(is_word) {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            let end = tail.find(|c| !is_word(c)).unwrap_or(tail.len());
            let word = tail[..end].trim_end_matches('.');
            if word.is_empty() {
                // Only dots: not a name.
                out.push_str(&tail[..end]);
                rest = &tail[end..];
                continue;
            }
            let lower = word.to_lowercase();
            if self.names.contains(&lower)
                || self
                    .suffixes
                    .iter()
                    .any(|s| lower.ends_with(s.as_str()) && lower.len() > s.len())
            {
                out.push_str(&self.placeholder);
                changed = true;
            } else {
                out.push_str(word);
            }
            rest = &tail[word.len()..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

wraith_plugin::export!(RedactNames);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wraith_plugin::testing::Harness;

    fn harness() -> Harness<RedactNames> {
        Harness::new(json!({"names": ["project-atlas", "Hydra"], "host_suffixes": [".corp"], "placeholder": "[internal]"})).unwrap()
    }

    fn check(input: &str, expected: Option<&str>) {
        let mut h = harness();
        assert_eq!(h.plugin().redact(input).as_deref(), expected, "{input}");
    }

    #[test]
    fn redacts_names_and_hosts_as_whole_words() {
        check(
            "deploying project-atlas to build-7.corp.",
            Some("deploying [internal] to [internal]."),
        );
        check("HYDRA failed", Some("[internal] failed"));
        check("hydrant and atlas are fine", None);
        check("see example.com or corp", None);
    }

    #[test]
    fn edits_only_what_matches() {
        let mut h = harness();
        let out = h.run_one(json!({"event_type": "t", "command": "sync hydra", "context": {"host": "db1.corp", "os": "linux"}}));
        assert_eq!(out.event["command"], "sync [internal]");
        assert_eq!(
            out.event["context"],
            json!({"host": "[internal]", "os": "linux"})
        );
        assert_eq!(h.counters()["names_redacted"], 2);
    }

    #[test]
    fn refuses_useless_or_wrong_config() {
        let e = Harness::<RedactNames>::new(json!({})).err().unwrap();
        assert_eq!(e.field, "names");
        let e = Harness::<RedactNames>::new(json!({"host_suffixes": ["corp"]}))
            .err()
            .unwrap();
        assert_eq!(e.field, "host_suffixes[0]");
        let e = Harness::<RedactNames>::new(json!({"name": ["x"]}))
            .err()
            .unwrap();
        assert!(e.message.contains("unknown field `name`"), "{e}");
    }

    #[test]
    fn the_readme_config_works_as_documented() {
        let readme = include_str!("../README.md");
        let configs = wraith_plugin::testing::configs_in_markdown(readme, "redact-names").unwrap();
        assert_eq!(configs.len(), 1, "one config example in the README");
        let mut h = Harness::<RedactNames>::new(configs[0].clone()).unwrap();
        let out = h.run_one(json!({"command": "deploy hydra to api.internal"}));
        assert_eq!(out.event["command"], "deploy [internal] to [internal]");
    }
}
