use super::*;
use serde_json::json;
use wraith_plugin::testing::Harness;

fn harness(config: Value) -> Harness<Enrich> {
    Harness::new(config).unwrap()
}

/// Run `event` with `config`; the event after enrichment.
fn run(config: Value, event: Value) -> Value {
    let out = harness(config).run_one(event);
    assert_eq!(out.verdict, Verdict::Keep, "enrich always keeps");
    out.event
}

fn check_version(version: &str, major: Option<i64>, minor: Option<i64>) {
    assert_eq!(version_parts(version), (major, minor), "{version:?}");
}

fn check_os(os: &str, family: &str) {
    assert_eq!(os_family(os), family, "{os:?}");
}

fn check_bucket(ms: f64, bucket: Option<&str>) {
    assert_eq!(duration_bucket(ms), bucket, "{ms}");
}

fn check_config_error(config: Value, field: &str, message_part: &str) {
    let err = Harness::<Enrich>::new(config.clone())
        .err()
        .expect("config refused");
    assert_eq!(err.field, field, "{config}: {err}");
    assert!(err.message.contains(message_part), "{config}: {err}");
}

/// Only derivation off: what a test of one feature runs with.
fn no_derive() -> Value {
    json!({"version_parts": false, "os_normalise": false, "duration_bucket": false})
}

#[test]
fn version_parts_parse() {
    check_version("1.4.2-beta", Some(1), Some(4));
    check_version("1.4.2", Some(1), Some(4));
    check_version("v2.0", Some(2), Some(0));
    check_version("V10.11.12+build.5", Some(10), Some(11));
    check_version(" 3.7 ", Some(3), Some(7));
    check_version("2024.10", Some(2024), Some(10));
    check_version("1", Some(1), None);
    check_version("1.x", Some(1), None);
    check_version("1.4rc1", Some(1), None);
    check_version("1.-4", Some(1), None);
    check_version("", None, None);
    check_version("dev", None, None);
    check_version("x.1", None, None);
    check_version("-1.2", None, None);
    check_version("99999999999999999999.1", None, None);
}

#[test]
fn os_family_normalises() {
    for os in [
        "linux",
        "Linux",
        "linux2",
        "GNU/Linux",
        "Linux-5.15.0-x86_64-with-glibc2.35",
    ] {
        check_os(os, "linux");
    }
    for os in [
        "darwin",
        "Darwin",
        "macOS",
        "MacOS",
        "osx",
        "OS X",
        "Mac OS X",
        "macOS-14.2-arm64",
    ] {
        check_os(os, "macos");
    }
    for os in [
        "win32",
        "Windows_NT",
        "Windows",
        "windows",
        "win64",
        "cygwin",
        "msys",
        "Windows-10-10.0.19041-SP0",
    ] {
        check_os(os, "windows");
    }
    for os in ["freebsd", "FreeBSD", "freebsd13", "FreeBSD-13.2-RELEASE"] {
        check_os(os, "freebsd");
    }
    for os in ["", "openbsd", "sunos", "aix", "android", "plan9"] {
        check_os(os, "other");
    }
}

#[test]
fn duration_buckets() {
    check_bucket(0.0, Some("<100ms"));
    check_bucket(99.9, Some("<100ms"));
    check_bucket(100.0, Some("100ms-1s"));
    check_bucket(999.0, Some("100ms-1s"));
    check_bucket(1_000.0, Some("1s-10s"));
    check_bucket(9_999.0, Some("1s-10s"));
    check_bucket(10_000.0, Some("10s-1m"));
    check_bucket(59_999.0, Some("10s-1m"));
    check_bucket(60_000.0, Some(">1m"));
    check_bucket(1e12, Some(">1m"));
    check_bucket(-1.0, None);
    check_bucket(f64::NAN, None);
    check_bucket(f64::INFINITY, None);
}

#[test]
fn hmac_matches_rfc_4231() {
    let check = |key: &[u8], data: &[u8], expected: &str| {
        assert_eq!(hex(&KeyedHasher::new(key).mac(data)), expected);
    };
    check(
        &[0x0b; 20],
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    );
    check(
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
    // A key longer than the block is hashed first.
    check(
        &[0xaa; 131],
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    );
    // A key of exactly one block is used as is.
    check(
        &[b'k'; 64],
        b"x",
        "f91c4c403625fb06910ef93999265bbd2d62baeaec6ff36455498cc124fe3e66",
    );
    let h = KeyedHasher::new(b"s3cret");
    assert_eq!(h.hash_id("inst-1"), "0423ac5ab426fe85654f33cf6ebc38df");
    assert_eq!(h.hash_id("inst-1").len(), HASH_HEX_CHARS);
    assert_ne!(h.hash_id("inst-2"), h.hash_id("inst-1"));
    assert_ne!(
        KeyedHasher::new(b"other").hash_id("inst-1"),
        h.hash_id("inst-1")
    );
    assert_eq!(
        format!("{h:?}"),
        "KeyedHasher { .. }",
        "the key never shows"
    );
}

#[test]
fn derives_everything_by_default() {
    let out = run(
        json!({}),
        json!({
            "event_type": "tool_succeeded",
            "duration_ms": 1500,
            "context": {"tool_version": "1.4.2-beta", "os": "Darwin", "installation_id": "i"}
        }),
    );
    assert_eq!(
        out,
        json!({
            "event_type": "tool_succeeded",
            "duration_ms": 1500,
            "context": {
                "tool_version": "1.4.2-beta", "os": "Darwin", "installation_id": "i",
                "tool_version_major": 1, "tool_version_minor": 4, "os_family": "macos"
            },
            "duration_bucket": "1s-10s"
        })
    );
}

#[test]
fn derivations_can_be_turned_off() {
    let event = json!({"duration_ms": 5, "context": {"tool_version": "2.1", "os": "win32"}});
    let out = run(json!({"derive": no_derive()}), event.clone());
    assert_eq!(out, event);
    let out = run(
        json!({"derive": {"version_parts": false, "duration_bucket": false}}),
        event.clone(),
    );
    assert_eq!(out["context"]["os_family"], "windows");
    assert!(out["context"].get("tool_version_major").is_none());
    assert!(out.get("duration_bucket").is_none());
    let out = run(json!({"derive": {"os_normalize": false}}), event);
    assert!(
        out["context"].get("os_family").is_none(),
        "the US spelling is accepted too"
    );
    assert_eq!(out["context"]["tool_version_minor"], 1);
}

#[test]
fn odd_input_is_enriched_where_possible() {
    // Nothing to derive from: nothing added.
    let empty = json!({"event_type": "x"});
    assert_eq!(run(json!({}), empty.clone()), empty);
    // Wrong types: skipped, never a failure.
    let odd = json!({"duration_ms": "fast", "context": {"tool_version": true, "os": 7}});
    assert_eq!(run(json!({}), odd.clone()), odd);
    let odd = json!({"duration_ms": -3, "context": "linux"});
    assert_eq!(run(json!({}), odd.clone()), odd);
    // A numeric version is read as written.
    let out = run(json!({}), json!({"context": {"tool_version": 3.2}}));
    assert_eq!(out["context"]["tool_version_major"], 3);
    assert_eq!(out["context"]["tool_version_minor"], 2);
    // Major without minor.
    let out = run(json!({}), json!({"context": {"tool_version": "7"}}));
    assert_eq!(out["context"]["tool_version_major"], 7);
    assert!(out["context"].get("tool_version_minor").is_none());
    // Unknown OS, fractional duration.
    let out = run(
        json!({}),
        json!({"duration_ms": 0.25, "context": {"os": "haiku"}}),
    );
    assert_eq!(out["context"]["os_family"], "other");
    assert_eq!(out["duration_bucket"], "<100ms");
}

#[test]
fn stale_derived_fields_are_removed() {
    let out = run(
        json!({}),
        json!({
            "duration_ms": -1, "duration_bucket": ">1m",
            "context": {"tool_version": "dev", "tool_version_major": 9, "tool_version_minor": 9, "os_family": "linux"}
        }),
    );
    assert_eq!(
        out,
        json!({"duration_ms": -1, "context": {"tool_version": "dev"}})
    );
    // A client-sent value is overwritten by the derived one.
    let out = run(
        json!({}),
        json!({"context": {"os": "win32", "os_family": "linux"}}),
    );
    assert_eq!(out["context"]["os_family"], "windows");
}

#[test]
fn labels_under_the_default_path() {
    let out = run(
        json!({"derive": no_derive(), "labels": {"environment": "prod", "region": "eu-west-1", "gateway_id": "gw-1", "shard": 3}}),
        json!({"event_type": "x"}),
    );
    assert_eq!(
        out,
        json!({"event_type": "x", "_wraith": {"labels": {"environment": "prod", "region": "eu-west-1", "gateway_id": "gw-1", "shard": 3}}})
    );
    // Existing _wraith content is kept; labels overwrite their own keys.
    let out = run(
        json!({"derive": no_derive(), "labels": {"environment": "prod"}}),
        json!({"_wraith": {"schema_errors": ["a: required"], "labels": {"environment": "dev"}}}),
    );
    assert_eq!(
        out,
        json!({"_wraith": {"schema_errors": ["a: required"], "labels": {"environment": "prod"}}})
    );
}

#[test]
fn labels_at_custom_paths() {
    let out = run(
        json!({"derive": no_derive(), "labels_path": "meta", "labels": {"env": "prod", "site.dc": "fra1"}}),
        json!({}),
    );
    assert_eq!(
        out,
        json!({"meta": {"env": "prod", "site": {"dc": "fra1"}}})
    );
    let out = run(
        json!({"derive": no_derive(), "labels_path": "", "labels": {"context.environment": "prod", "gateway": {"id": "gw-1"}}}),
        json!({"context": {"os": "linux"}}),
    );
    assert_eq!(
        out,
        json!({"context": {"os": "linux", "environment": "prod"}, "gateway": {"id": "gw-1"}})
    );
}

#[test]
fn hashes_listed_ids() {
    let config = json!({
        "derive": no_derive(),
        "hash_ids": {"key": "s3cret", "fields": ["context.installation_id", "user", "missing"]}
    });
    let mut h = harness(config);
    let out = h.run_one(json!({
        "context": {"installation_id": "inst-1", "os": "linux"},
        "user": {"id": 12345, "emails": ["a@example.com"], "admin": true, "nick": null}
    }));
    let hasher = KeyedHasher::new(b"s3cret");
    assert_eq!(
        out.event,
        json!({
            "context": {"installation_id": "0423ac5ab426fe85654f33cf6ebc38df", "os": "linux"},
            "user": {
                "id": "672b04fffe37d7340773aec34f538dce",
                "emails": [hasher.hash_id("a@example.com")],
                "admin": true,
                "nick": null
            }
        })
    );
    assert_eq!(h.counters()["ids_hashed"], 3);
    // The same id always hashes the same, so users can still be counted.
    let again = h.run_one(json!({"context": {"installation_id": "inst-1"}}));
    assert_eq!(
        again.event["context"]["installation_id"],
        "0423ac5ab426fe85654f33cf6ebc38df"
    );
    // Nothing to hash: nothing counted, nothing changed.
    let none = h.run_one(json!({"userid": "u"}));
    assert_eq!(none.event, json!({"userid": "u"}));
    assert_eq!(h.counters()["ids_hashed"], 4);
}

#[test]
fn prefix_matching_respects_path_boundaries() {
    assert!(is_at_or_under("user", "user"));
    assert!(is_at_or_under("user.id", "user"));
    assert!(is_at_or_under("user[0]", "user"));
    assert!(!is_at_or_under("username", "user"));
    assert!(!is_at_or_under("user\\.id", "user"));
    assert!(!is_at_or_under("use", "user"));
}

#[test]
fn everything_together() {
    let out = run(
        json!({
            "labels": {"environment": "prod"},
            "hash_ids": {"key": "s3cret", "fields": ["context.installation_id"]}
        }),
        json!({
            "event_type": "tool_failed",
            "duration_ms": 75000,
            "context": {"installation_id": "inst-1", "tool_version": "0.9.1", "os": "Windows_NT"}
        }),
    );
    assert_eq!(
        out,
        json!({
            "event_type": "tool_failed",
            "duration_ms": 75000,
            "context": {
                "installation_id": "0423ac5ab426fe85654f33cf6ebc38df", "tool_version": "0.9.1", "os": "Windows_NT",
                "tool_version_major": 0, "tool_version_minor": 9, "os_family": "windows"
            },
            "duration_bucket": ">1m",
            "_wraith": {"labels": {"environment": "prod"}}
        })
    );
}

#[test]
fn config_errors_name_the_field() {
    check_config_error(
        json!({"hash_ids": {"fields": ["context.installation_id"]}}),
        "hash_ids.key",
        "required",
    );
    check_config_error(
        json!({"hash_ids": {"key": "", "fields": []}}),
        "hash_ids.key",
        "empty",
    );
    check_config_error(
        json!({"hash_ids": {"key": "k", "fields": ["ok", "a..b"]}}),
        "hash_ids.fields[1]",
        "path",
    );
    check_config_error(
        json!({"hash_ids": {"key": "k", "feilds": []}}),
        "hash_ids.feilds",
        "unknown field",
    );
    check_config_error(
        json!({"hash_ids": {"key": 5}}),
        "hash_ids.key",
        "invalid type",
    );
    check_config_error(json!({"labels": {"a..b": "x"}}), "labels.a..b", "path");
    check_config_error(json!({"labels": ["env"]}), "labels", "invalid type");
    check_config_error(json!({"labels_path": "a."}), "labels_path", "path");
    check_config_error(
        json!({"derive": {"version_parts": "yes"}}),
        "derive.version_parts",
        "invalid type",
    );
    check_config_error(
        json!({"derive": {"os_family": true}}),
        "derive.os_family",
        "unknown field",
    );
    check_config_error(json!({"label": {}}), "label", "unknown field");
    // A key without fields is accepted (and does nothing).
    assert!(Harness::<Enrich>::new(json!({"hash_ids": {"key": "k"}})).is_ok());
}

/// The config of every ```toml example in the README, as the gateway hands it
/// to the plugin.
fn readme_configs() -> Vec<Value> {
    wraith_plugin::testing::configs_in_markdown(include_str!("../README.md"), "enrich").unwrap()
}

#[test]
fn readme_examples_are_valid_configs() {
    let configs = readme_configs();
    assert!(configs.len() >= 2);
    for config in configs {
        if let Err(e) = Harness::<Enrich>::new(config.clone()) {
            panic!("{config}: {e}");
        }
    }
}

#[test]
fn readme_examples_behave_as_documented() {
    let configs = readme_configs();
    let mut h = harness(configs[1].clone());
    let out = h.run_one(json!({
        "event_type": "tool_failed", "duration_ms": 75000, "user": {"id": 12345},
        "context": {"installation_id": "inst-1", "tool_version": "0.9.1", "os": "Windows_NT"}
    }));
    let hasher = KeyedHasher::new("3f0c…".as_bytes());
    assert_eq!(
        out.event,
        json!({
            "event_type": "tool_failed", "duration_ms": 75000, "user": {"id": hasher.hash_id("12345")},
            "context": {"installation_id": hasher.hash_id("inst-1"), "tool_version": "0.9.1", "os": "Windows_NT",
                        "tool_version_major": 0, "tool_version_minor": 9, "os_family": "windows"},
            "duration_bucket": ">1m",
            "_wraith": {"labels": {"environment": "prod", "region": "eu-west-1"}}
        })
    );
    let mut h = harness(configs[2].clone());
    assert_eq!(
        h.run_one(json!({"duration_ms": 5, "context": {"os": "linux"}}))
            .event,
        json!({"duration_ms": 5, "context": {"os": "linux", "environment": "prod"}, "gateway_id": "gw-1"})
    );
}
