use crate::support::*;
use serde_json::json;

#[test]
fn a_python_plugin_runs_through_the_same_contract() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("redact-py", "redact-py")],
        manifest: Some("[plugins.redact-py.config]\nfield = \"context.hostname\"\nreject_types = [\"internal\"]\n".into()),
        ..Default::default()
    });
    let (s, a) = gw.post_json(
        "/v1/events",
        &json!([
            {"event_type": "tool_invoked", "context": {"hostname": "ada-laptop.corp", "os": "linux"}},
            {"event_type": "internal"},
            {"event_type": "tool_invoked", "context": {"os": "linux"}},
        ]),
    );
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        (a["accepted"].as_u64(), a["dead_lettered"].as_u64()),
        (Some(2), Some(1)),
        "{a}"
    );
    let stored = gw.lines("events");
    assert_eq!(
        stored[0]["context"],
        json!({"hostname": "[redacted]", "os": "linux"})
    );
    assert_eq!(stored[1]["context"], json!({"os": "linux"}));
    let dlq = gw.lines("dlq");
    assert_eq!(
        dlq[0]["dlq"]["reason"],
        "event type internal is refused by redact-py"
    );
    assert!(
        gw.get_text("/metrics")
            .contains("wraith_plugin_counter_total{plugin=\"redact-py\",name=\"redacted\"} 1")
    );
    // The plugin's log line reaches the gateway log.
    gw.wait_for_log("redact-py ready");
    // Its config is checked by the plugin itself, with the field named.
    std::fs::write(
        gw.plugins_dir().join("plugins.toml"),
        "[plugins.redact-py.config]\nfeild = \"x\"\n",
    )
    .unwrap();
    gw.wait_for(
        "the refused config",
        std::time::Duration::from_secs(60),
        |g| {
            g.plugin("redact-py")
                .map(|p| !p["last_error"].is_null())
                .unwrap_or(false)
        },
    );
    let err = gw.plugin("redact-py").unwrap()["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("plugin `redact-py` refused its config: field `feild`: unknown field"),
        "{err}"
    );
}
