//! The anonymous context every event carries, and nothing else: no host
//! name, user name, path, environment variable, IP address or error message.

use serde_json::{Map, Value, json};
use std::path::Path;

/// The installation id: a random UUID kept in `<dir>/installation_id`, made
/// (and the folder created, owner-only) on first use. `None` when it can be
/// neither read nor written; events then go without one.
pub fn installation_id(dir: &Path) -> Option<String> {
    let file = dir.join("installation_id");
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Ok(id) = uuid::Uuid::parse_str(text.trim())
    {
        return Some(id.hyphenated().to_string());
    }
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    crate::settings::create_private_dir(dir).ok()?;
    // Write beside and rename, so two tools starting at once agree on one id
    // (the last rename wins, and both read it back).
    let tmp = dir.join(format!(".installation_id.{}", std::process::id()));
    std::fs::write(&tmp, format!("{id}\n")).ok()?;
    std::fs::rename(&tmp, &file).ok()?;
    let text = std::fs::read_to_string(&file).ok()?;
    uuid::Uuid::parse_str(text.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// The context object: `installation_id`, `tool_version`, `os`, `arch`,
/// `sdk`, `sdk_version`, `language`.
pub fn context(installation_id: Option<&str>, tool_version: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(id) = installation_id {
        m.insert("installation_id".into(), json!(id));
    }
    m.insert("tool_version".into(), json!(tool_version));
    m.insert("os".into(), json!(std::env::consts::OS));
    m.insert("arch".into(), json!(std::env::consts::ARCH));
    m.insert("sdk".into(), json!("wraith-sdk-rust"));
    m.insert("sdk_version".into(), json!(env!("CARGO_PKG_VERSION")));
    m.insert("language".into(), json!("rust"));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn installation_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("w");
        let a = installation_id(&home).unwrap();
        let b = installation_id(&home).unwrap();
        assert_eq!(a, b);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 4);
        let mode = std::fs::metadata(&home).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A damaged file is replaced.
        std::fs::write(home.join("installation_id"), "garbage").unwrap();
        assert_ne!(installation_id(&home).unwrap(), a);
        let names: Vec<_> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("installation_id")]);
    }

    #[test]
    fn context_holds_nothing_identifying() {
        let c = context(Some("id"), "1.2.3");
        let keys: Vec<&str> = c.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "installation_id",
                "tool_version",
                "os",
                "arch",
                "sdk",
                "sdk_version",
                "language"
            ]
        );
        let text = Value::Object(c).to_string();
        for secret in [std::env::var("HOME").ok(), std::env::var("USER").ok()]
            .into_iter()
            .flatten()
            .filter(|s| s.len() > 2)
        {
            assert!(!text.contains(&secret), "{text} contains {secret}");
        }
    }
}
