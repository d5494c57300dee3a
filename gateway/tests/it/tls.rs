//! HTTPS on the listener: a client that trusts the certificate gets in, a
//! renewed certificate is served after `gateway reload` without a restart,
//! and a bad certificate file leaves the served one in place.

use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Cert {
    pem: String,
    key: String,
}

fn self_signed(name: &str) -> Cert {
    let c = rcgen::generate_simple_self_signed(vec![name.to_string(), "127.0.0.1".to_string()])
        .unwrap();
    Cert {
        pem: c.cert.pem(),
        key: c.signing_key.serialize_pem(),
    }
}

fn write(dir: &Path, c: &Cert) {
    for (name, text) in [("cert.pem", &c.pem), ("key.pem", &c.key)] {
        let tmp = dir.join(format!(".{name}"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

/// A client that trusts only `trusted`.
fn client(trusted: &Cert) -> ureq::Agent {
    let root = ureq::tls::Certificate::from_pem(trusted.pem.as_bytes()).unwrap();
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
                .build(),
        )
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<(u16, Value), ureq::Error> {
    let mut r = agent
        .post(format!("{url}/v1/events"))
        .header("content-type", "application/json")
        .send(body.to_string())?;
    let s = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    Ok((s, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[test]
fn https_with_a_certificate_renewed_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed("localhost");
    write(dir.path(), &first);
    let cert = dir.path().join("cert.pem").display().to_string();
    let key = dir.path().join("key.pem").display().to_string();
    let gw = Gateway::start_with(Options {
        args: vec!["--tls-cert".into(), cert, "--tls-key".into(), key],
        ..Default::default()
    });
    assert!(gw.url.starts_with("https://127.0.0.1:"), "{}", gw.url);
    let url = gw.url.replace("127.0.0.1", "localhost");
    let (s, a) = post(&client(&first), &url, &json!([event(1)])).unwrap();
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
    // Plain HTTP on the TLS port gets nothing, and the gateway stays up.
    let plain = gw.url.replace("https://", "http://");
    assert!(
        reqwest::blocking::Client::new()
            .get(format!("{plain}/health"))
            .timeout(Duration::from_secs(5))
            .send()
            .is_err()
    );
    // A client that trusts another certificate is refused.
    let stranger = self_signed("localhost");
    assert!(post(&client(&stranger), &url, &json!([event(2)])).is_err());

    // Renew: new files, `gateway reload`, and new handshakes get the new one.
    let second = self_signed("localhost");
    write(dir.path(), &second);
    let out = gateway_command()
        .args(["reload", "--data-dir", gw.data_dir().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("server.tls_cert (reread)"), "{text}");
    let (s, _) = post(&client(&second), &url, &json!([event(3)])).unwrap();
    assert_eq!(s, 200);
    assert!(post(&client(&first), &url, &json!([event(4)])).is_err());

    // A broken certificate file: the reload is refused, the served one stays.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate\n").unwrap();
    let out = gateway_command()
        .args(["reload", "--data-dir", gw.data_dir().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("kept its running config") && text.contains("cert.pem"),
        "{text}"
    );
    let (s, _) = post(&client(&second), &url, &json!([event(5)])).unwrap();
    assert_eq!(s, 200);
    assert_eq!(gw.lines("events").len(), 3);
}

#[test]
fn a_missing_or_mismatched_certificate_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed("localhost");
    let b = self_signed("localhost");
    std::fs::write(dir.path().join("a.pem"), &a.pem).unwrap();
    std::fs::write(dir.path().join("b.key"), &b.key).unwrap();
    for (cert, key, needle) in [
        ("missing.pem", "b.key", "cannot read the TLS certificate"),
        ("a.pem", "b.key", "does not fit the certificate"),
        ("a.pem", "a.pem", "cannot read the TLS private key"),
    ] {
        let out = gateway_command()
            .args(["--plugins", dir.path().to_str().unwrap()])
            .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(dir.path().join(cert))
            .arg("--tls-key")
            .arg(dir.path().join(key))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cert} {key}");
        assert!(err.contains(needle), "{cert} {key}: {err}");
    }
    // One without the other is refused by the argument parser.
    let out = gateway_command()
        .args(["--tls-cert", "a.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
