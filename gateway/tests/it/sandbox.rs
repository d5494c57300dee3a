use crate::support::*;
use serde_json::json;

#[test]
fn a_plugin_gets_no_files_environment_or_network() {
    // Something is listening, so a refused connection means the sandbox refused it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let gw = Gateway::start_with(Options {
        plugins: vec![("pry", "pry")],
        manifest: Some(format!("[plugins.pry.config]\nconnect = \"{addr}\"\n")),
        ..Default::default()
    });
    let (s, a) = gw.post_json("/v1/events", &json!([event(1)]));
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
    let e = &gw.lines("events")[0];
    let pry = &e["pry"];
    for key in ["file", "dir", "net", "dns"] {
        let got = pry[key].as_str().unwrap();
        assert!(got.starts_with("denied"), "plugin got {key}: {got}");
    }
    assert_eq!(
        pry["env"], "empty",
        "plugin saw environment: {}",
        pry["env"]
    );
    // And the listener never saw a connection.
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the plugin reached the network");
}
