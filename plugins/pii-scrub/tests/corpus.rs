//! A corpus of events with PII embedded in varied positions and formats, and
//! of look-alikes that must survive. Every sample runs through the plugin via
//! the SDK harness (the same flat batch and edit path the gateway uses).
//!
//! Run with `cargo test -p wraith-plugin-pii-scrub --test corpus -- --nocapture`
//! to see the table.

#[path = "corpus/generated.rs"]
mod generated;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use wraith_plugin::testing::Harness;
use wraith_plugin_pii_scrub::PiiScrub;

/// One PII sample: the value that must disappear and the event carrying it.
struct Sample {
    rule: &'static str,
    pii: String,
    event: Value,
    /// JSON pointer of the leaf holding the PII (None when it is a key).
    pointer: Option<String>,
}

/// Wrap `text` in one of several event shapes; returns the event and the
/// JSON pointer of the leaf.
fn shape(i: usize, text: &str) -> (Value, &'static str) {
    match i % 8 {
        0 => (json!({"message": text, "level": "error"}), "/message"),
        1 => (
            json!({"context": {"app": {"note": text}}, "ts": "2024-01-15T10:30:00Z"}),
            "/context/app/note",
        ),
        2 => (
            json!({"error": {"type": "ValueError", "stack": ["at handler (src/app.py:42)", text]}}),
            "/error/stack/1",
        ),
        3 => (
            json!({"process": {"argv": ["/usr/bin/env", "deploy", text], "pid": 4242}}),
            "/process/argv/2",
        ),
        4 => (
            json!({"http": {"request": {"method": "POST", "headers": {"x-debug": text}}}}),
            "/http/request/headers/x-debug",
        ),
        5 => (
            json!({"config": {"dump": text, "version": "1.2.3"}}),
            "/config/dump",
        ),
        6 => (
            json!({"batch": [{"attrs": {"v": "ok"}}, {"attrs": {"v": text}}]}),
            "/batch/1/attrs/v",
        ),
        _ => (json!({"log": text, "tags": ["a", "b"]}), "/log"),
    }
}

struct Corpus {
    samples: Vec<Sample>,
    n: usize,
}

impl Corpus {
    /// `template` with `{}` replaced by `pii`, in the next event shape.
    fn t(&mut self, rule: &'static str, pii: &str, template: &str) {
        let text = template.replace("{}", pii);
        assert!(text.contains(pii));
        let (event, pointer) = shape(self.n, &text);
        self.n += 1;
        self.samples.push(Sample {
            rule,
            pii: pii.to_string(),
            event,
            pointer: Some(pointer.to_string()),
        });
    }

    /// A hand-built event.
    fn ev(&mut self, rule: &'static str, pii: &str, event: Value, pointer: Option<&str>) {
        assert!(event.to_string().contains(&json_text(pii)));
        self.samples.push(Sample {
            rule,
            pii: pii.to_string(),
            event,
            pointer: pointer.map(str::to_string),
        });
    }
}

/// How `s` appears inside serialized JSON.
fn json_text(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap();
    q[1..q.len() - 1].to_string()
}

fn pem(label: &str, body: &str, end: bool) -> String {
    let mut s = format!("-----BEGIN {label}-----\n{body}\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ==\n");
    if end {
        s.push_str(&format!("-----END {label}-----"));
    }
    s
}

const JWTS: [&str; 9] = [
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.d9HOFtVgUApviouikoPvDDIQoz5SEDgMbObRXw365cg",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhZGEiLCJyb2xlIjoiYWRtaW4ifQ.OWD398l9QnQKMMT53pNwi6iBcR_r-VHrDJGbwDABkik",
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20iLCJhdWQiOiJhcGkiLCJleHAiOjE5MDAwMDAwMDB9.3QCgNaUfUBdW4GTN2Efp7_r0p2_1BKOw9Dr8AQ40Q4k",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1aWQiOjQyfQ.BWCxBYWS6D7_7RXhkFAj26-wSj_HdycY37C0mQgoCTU",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJlbWFpbCI6InhAeS56In0.vdgIEWBZ0AEkHyNQqgI4z2YnwojU3jWqpZMCyYajQRE",
    "eyJhbGciOiJFUzI1NiJ9.eyJzY29wZSI6InJlYWQgd3JpdGUifQ.J1mE18FitP1EUOvmrPFGic66xnTox4wzRX5OMIztM1E",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzaWQiOiJzLTEiLCJuIjo3fQ.Dlwpz7S2LTvHNEa7T96C7vcIKYO6ljL2rzRewfWz5ug",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJqdGkiOiJhYmMtMTIzIn0.cbPiOdh3zTrkDWnhTAwl9vniC2hBPLs0idDyBIU4w9Y",
    "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxLCJiIjpbMSwyXX0.kWfsBWn2oh-8MKGn58TArvzoNBjUliDoAVf5I8v9NwQ",
];

fn corpus() -> Vec<Sample> {
    let mut c = Corpus {
        samples: Vec::new(),
        n: 0,
    };

    // ---- email
    c.t(
        "email",
        "ada.lovelace@example.com",
        "failed to send mail to {} (550 mailbox unavailable)",
    );
    c.t(
        "email",
        "grace+alerts@mail.example.org",
        "From: Grace Hopper <{}>",
    );
    c.t(
        "email",
        "j_doe-99@sub.example.co.uk",
        "mailto:{}?subject=hello",
    );
    c.t("email", "ALAN.TURING@EXAMPLE.NET", "{}");
    c.t(
        "email",
        "first.last@corp-mail.example.io",
        "user {} logged in via SSO",
    );
    c.t("email", "x@example.de", "notify={};retry=3");
    c.t("email", "support-team@example.travel", "Contact: \"{}\"");
    c.t("email", "user%tag@example.com", "cc:{},bob@example.org");
    c.t(
        "email",
        "1234@example.com",
        "invite sent to {}. Next: onboarding",
    );
    c.ev(
        "email",
        "carol@example.com",
        json!({"per_user": {"carol@example.com": {"visits": 3}}}),
        None,
    );

    // ---- ip (v4 and v6)
    c.t("ip", "203.0.113.42", "connection from {} refused");
    c.t("ip", "10.20.30.40", "upstream {}:8080 timed out after 30s");
    c.t("ip", "192.168.1.254", "X-Forwarded-For: {}, 10.0.0.2");
    c.t("ip", "2001:db8::1", "GET https://[{}]:443/health");
    c.t(
        "ip",
        "fe80::1ff:fe23:4567:890a",
        "iface eth0 addr {}%eth0 scope link",
    );
    c.t("ip", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "peer={}");
    c.t("ip", "::ffff:192.0.2.128", "client {} disconnected");
    c.t("ip", "172.16.254.1", "route add {}/24 via gw");
    c.t("ip", "8.8.4.4", "dns: query to {} failed: SERVFAIL");
    c.t("ip", "fd12:3456:789a:1::1", "ULA {} assigned to wg0");
    c.t("ip", "::1", "listening on [{}]:9090");
    c.ev(
        "ip",
        "100.64.0.1",
        json!({"peers": {"100.64.0.1": "up"}}),
        None,
    );

    // ---- credit_card
    c.t(
        "credit_card",
        "4111111111111111",
        "payment declined for card {}",
    );
    c.t("credit_card", "4111 1111 1111 1111", "cc={}&exp=12/25");
    c.t("credit_card", "5555555555554444", "card number: {}");
    c.t("credit_card", "5105-1051-0510-5100", "{}");
    c.t("credit_card", "378282246310005", "charge ok: {} (amex)");
    c.t("credit_card", "3782 822463 10005", "PAN {} exp 09/27");
    c.t("credit_card", "6011000990139424", "\"card\": \"{}\"");
    c.t("credit_card", "3530111333300000", "txn 88123 card {}");
    c.t(
        "credit_card",
        "4012 8888 8888 1881",
        "retrying card {} 12/26 cvc ok",
    );
    c.t("credit_card", "2223003122003222", "mc2 {}");
    c.t("credit_card", "36227206271667", "diners={}");
    c.ev(
        "credit_card",
        "5555555555554444",
        json!({"payment": {"pan": 5555555555554444u64, "amount_cents": 1999}}),
        Some("/payment/pan"),
    );

    // ---- ssn
    c.t("ssn", "123-45-6789", "SSN: {}");
    c.t("ssn", "078-05-1120", "applicant ssn={} verified");
    c.t("ssn", "219-09-9999", "{}");
    c.t("ssn", "457-55-5462", "tax id ({}) on file");
    c.t("ssn", "001-01-0001", "{\"ssn\":\"{}\"}");
    c.t("ssn", "665-12-3456", "record 17: {}, DOB 1970-01-01");
    c.t("ssn", "899-99-9998", "SSN {}.");
    c.t("ssn", "536-90-4399", "ssn:{}");

    // ---- phone (the last one is deliberately hard: unseparated, no `+`)
    c.t("phone", "+44 20 7946 0958", "call {} now");
    c.t("phone", "+1 (555) 123-4567", "phone: {}");
    c.t("phone", "+4915112345678", "tel:{}");
    c.t("phone", "(555) 123-4567", "Contact: Ada, {}, London");
    c.t("phone", "555-123-4567", "{}");
    c.t(
        "phone",
        "+33 1 23 45 67 89",
        "sms to {} failed (code 21211)",
    );
    c.t("phone", "020 7946 0958", "mobile={}");
    c.t("phone", "555.867.5309", "reach me at {}.");
    c.t("phone", "1-800-555-0199", "support line {} (toll free)");
    c.t("phone", "+49 30 901820", "Tel. {}");
    c.t("phone", "06-12345678", "bel {} na 18:00");
    c.t("phone", "+81 3-1234-5678", "Tokyo office {}");
    c.t("phone", "+1 555 123 4567", "callback requested: {}");
    c.t("phone", "0044 20 7946 0958", "{} (intl)");
    c.t("phone", "(020) 7946 0958", "office: {}");
    c.t("phone", "5551234567", "phone {}");

    // ---- iban
    c.t("iban", "DE89370400440532013000", "IBAN: {}");
    c.t(
        "iban",
        "GB82 WEST 1234 5698 7654 32",
        "transfer to {} completed",
    );
    c.t("iban", "FR1420041010050500013M02606", "{}");
    c.t("iban", "NL91ABNA0417164300", "iban={}&bic=ABNANL2A");
    c.t(
        "iban",
        "ES9121000418450200051332",
        "payout account {} (verified)",
    );
    c.t("iban", "IT60X0542811101000000123456", "SEPA {}");
    c.t("iban", "CH93 0076 2011 6238 5295 7", "\"iban\":\"{}\"");
    c.t("iban", "BE68539007547034", "refund -> {}");
    c.t("iban", "PL61109010140000071219812874", "konto {}");

    // ---- jwt
    c.t("jwt", JWTS[0], "token={}&state=xyz");
    c.t("jwt", JWTS[1], "Set-Cookie: session={}; HttpOnly");
    c.t("jwt", JWTS[2], "id_token {}");
    c.t("jwt", JWTS[3], "{}");
    c.t("jwt", JWTS[4], "jwt: {}");
    c.t(
        "jwt",
        JWTS[5],
        "{\"access_token\": \"{}\", \"expires_in\": 3600}",
    );
    c.t("jwt", JWTS[6], "verify({}) failed: token expired");
    c.t("jwt", JWTS[7], "https://app.example.com/cb?jwt={}#x");

    // ---- aws_key
    c.t("aws_key", "AKIAIOSFODNN7EXAMPLE", "using access key {}");
    c.t("aws_key", "ASIAY34FZKBOKMUTVV7A", "aws_access_key_id={}");
    c.t("aws_key", "AKIA2OGYBAH6STMMNXNN", "{}");
    c.t(
        "aws_key",
        "AKIAZ7QWERTYUIOP1234",
        "[default]\naws_access_key_id = {}\n",
    );
    c.t(
        "aws_key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = {}",
    );
    c.t(
        "aws_key",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "export AWS_SECRET_ACCESS_KEY={} && terraform apply",
    );
    c.t(
        "aws_key",
        "ASIAQWERTYUIOPASDFGH",
        "{\"AccessKeyId\": \"{}\"}",
    );
    c.ev(
        "aws_key",
        "Xq9+Lm2Pz8Rt4Vb6Nc1Ks7Jd3Hf5Gw0Ya2Eu4Io6",
        json!({"aws": {"secret_access_key": "Xq9+Lm2Pz8Rt4Vb6Nc1Ks7Jd3Hf5Gw0Ya2Eu4Io6"}}),
        Some("/aws/secret_access_key"),
    );
    c.ev(
        "aws_key",
        "9drTJvcXLB89EXAMPLEKEYabc123xyzQWE456abc",
        json!({"settings": {"awsSecretKey": "9drTJvcXLB89EXAMPLEKEYabc123xyzQWE456abc"}}),
        Some("/settings/awsSecretKey"),
    );

    // ---- token
    c.t(
        "token",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "GITHUB_TOKEN={} ./release.sh",
    );
    c.t(
        "token",
        "gho_abcdefghijklmnopqrstuvwxyz0123456789",
        "oauth token {} issued",
    );
    c.t(
        "token",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
        "{}",
    );
    c.t(
        "token",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "slack client init with {}",
    );
    c.t(
        "token",
        "xoxp-2222222222-3333333333-4444444444-abcdef0123456789",
        "posting with token={}",
    );
    c.t(
        "token",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "stripe.api_key = '{}'",
    );
    c.t(
        "token",
        "rk_live_51H8abcdefGHIJKLmnopQRSTuv",
        "restricted key {} used",
    );
    c.t(
        "token",
        "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
        "maps?key={}&q=paris",
    );
    c.t(
        "token",
        "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "//registry.npmjs.org/:_authToken={}",
    );
    c.t("token", "ghs_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "{}");

    // ---- bearer
    c.t("bearer", "abc123def456ghi789", "Authorization: Bearer {}");
    c.t(
        "bearer",
        JWTS[8],
        "curl -H 'Authorization: Bearer {}' https://api.example.com",
    );
    c.t(
        "bearer",
        "ya29.a0AfH6SMBx3kl-Qw_exampleToken123",
        "bearer {}",
    );
    c.t("bearer", "dXNlcjpwYXNzd29yZA==", "Authorization: Basic {}");
    c.t("bearer", "YWRhOmh1bnRlcjI=", "basic {}");
    c.t(
        "bearer",
        "Ym9iOnNlY3JldA==",
        "Proxy-Authorization: Basic {}",
    );
    c.t("bearer", "tok_9f8e7d6c5b4a3210", "BEARER {}");
    c.t(
        "bearer",
        "0a1b2c3d4e5f6a7b8c9d0e1f",
        "upstream rejected Bearer {} (expired)",
    );
    c.t("bearer", "mF_9.B5f-4.1JqM", "WWW: Bearer {}");

    // ---- url_password
    c.t(
        "url_password",
        "app:Hunt3r2024",
        "connecting to postgres://{}@db.internal:5432/prod",
    );
    c.t(
        "url_password",
        "s3cr3tP4ss",
        "REDIS_URL=redis://:{}@cache:6379/0",
    );
    c.t(
        "url_password",
        "admin:Tr0ub4dor",
        "mongodb+srv://{}@cluster0.example.net/db?retryWrites=true",
    );
    c.t(
        "url_password",
        "correct-horse-battery",
        "git clone https://ada:{}@git.example.com/repo.git",
    );
    c.t(
        "url_password",
        "guest:guest123",
        "error: could not connect (amqp://{}@rabbit.local:5672/)",
    );
    c.t(
        "url_password",
        "b0bpass",
        "ftp://bob:{}@files.example.org/pub",
    );
    c.t(
        "url_password",
        "toor99",
        "DATABASE_URL=mysql://root:{}@127.0.0.1:3306/app",
    );
    c.t(
        "url_password",
        "Pa55word!",
        "smtp://mailer:{}@smtp.example.com:587",
    );

    // ---- private_key
    let bodies = [
        (
            "RSA PRIVATE KEY",
            "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi1",
            true,
        ),
        (
            "PRIVATE KEY",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj2",
            true,
        ),
        (
            "EC PRIVATE KEY",
            "MHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04f3",
            true,
        ),
        (
            "OPENSSH PRIVATE KEY",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ4",
            true,
        ),
        (
            "ENCRYPTED PRIVATE KEY",
            "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQw5",
            true,
        ),
        (
            "DSA PRIVATE KEY",
            "MIIBuwIBAAKBgQDzZVUoGqqWj3X1GaxVPa6Bxb8ZqA6",
            true,
        ),
        (
            "PGP PRIVATE KEY BLOCK",
            "lQOYBF0bSvcBCAC8+mYgp2ZcfPnL9YsgTx7a9rhTUv7",
            true,
        ),
        (
            "PRIVATE KEY",
            "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwTRUNC8",
            false,
        ),
    ];
    for (i, (label, body, end)) in bodies.iter().enumerate() {
        let block = pem(label, body, *end);
        let template = match i % 3 {
            0 => "loaded key:\n{}\n",
            1 => "{}",
            _ => "tls.key={} (from /etc/ssl)",
        };
        c.t("private_key", body, &template.replace("{}", &block));
    }
    // The same with JSON-escaped newlines inside a config dump.
    let escaped =
        pem("RSA PRIVATE KEY", "MIIEowIBAAKCAQEAescapedNewlines9", true).replace('\n', "\\n");
    c.t(
        "private_key",
        "MIIEowIBAAKCAQEAescapedNewlines9",
        &format!("{{\"key\": \"{escaped}\"}}"),
    );

    // ---- home_dir
    c.t(
        "home_dir",
        "/home/ada",
        "open {}/src/app/main.py: permission denied",
    );
    c.t(
        "home_dir",
        "/Users/grace",
        "log file {}/Library/Logs/app.log rotated",
    );
    c.t(
        "home_dir",
        r"C:\Users\alan",
        r"copying {}\AppData\Local\Temp\x.tmp",
    );
    c.t("home_dir", "C:/Users/bob", "saved {}/Desktop/report.xlsx");
    c.t(
        "home_dir",
        r"C:\\Users\\carol",
        r"path={}\\Documents\\q3.docx",
    );
    c.t("home_dir", "/home/dave", "file://{}/notes.txt");
    c.t("home_dir", "/home/eve", "cwd={}");
    c.t("home_dir", "/Users/frank", "cd {} && make build");
    c.t(
        "home_dir",
        "/home/heidi",
        "  File \"{}/venv/lib/python3.11/site-packages/x.py\", line 10, in run",
    );

    // ---- mac
    c.t("mac", "00:1A:2B:3C:4D:5E", "eth0: link up, hwaddr {}");
    c.t("mac", "00-1a-2b-3c-4d-5f", "dhcp: lease for {} expired");
    c.t("mac", "a4:83:e7:12:34:56", "{}");
    c.t("mac", "F0-18-98-AA-BB-CC", "mac={};");
    c.t("mac", "001a.2b3c.4d60", "cisco port Gi0/1 learned {}");
    c.t("mac", "3c:22:fb:01:02:03", "arp: ? (10.0.0.1) at {} on en0");
    c.t("mac", "de:ad:be:ef:00:01", "wol {}");
    c.t("mac", "08:00:27:8f:1a:2b", "\"mac\": \"{}\"");

    // ---- secret_key (by key name, and assignments in text)
    c.ev(
        "secret_key",
        "Hunt3r!x",
        json!({"user": {"name": "ada", "password": "Hunt3r!x"}}),
        Some("/user/password"),
    );
    c.ev(
        "secret_key",
        "p@ss w0rd 42",
        json!({"config": {"db": {"DB_PASSWORD": "p@ss w0rd 42", "host": "db"}}}),
        Some("/config/db/DB_PASSWORD"),
    );
    c.ev(
        "secret_key",
        "9f8e7d6c5b4a",
        json!({"http": {"headers": {"Authorization": "Token 9f8e7d6c5b4a"}}}),
        Some("/http/headers/Authorization"),
    );
    c.ev(
        "secret_key",
        "abc123xyz",
        json!({"http": {"headers": {"cookie": "sid=abc123xyz; theme=dark"}}}),
        Some("/http/headers/cookie"),
    );
    c.ev(
        "secret_key",
        "98765432109",
        json!({"client": {"apiKey": 98765432109u64}}),
        Some("/client/apiKey"),
    );
    c.ev(
        "secret_key",
        "cs_Zx81kLmn",
        json!({"oauth": {"client_secret": "cs_Zx81kLmn"}}),
        Some("/oauth/client_secret"),
    );
    c.ev(
        "secret_key",
        "sess_01HZX3K9V8Q",
        json!({"session_id": "sess_01HZX3K9V8Q", "n": 1}),
        Some("/session_id"),
    );
    c.ev(
        "secret_key",
        "key-7788aa",
        json!({"headers": {"x-api-key": "key-7788aa"}}),
        Some("/headers/x-api-key"),
    );
    c.ev(
        "secret_key",
        "rt_mQ82nB",
        json!({"auth": {"refresh_token": "rt_mQ82nB"}}),
        Some("/auth/refresh_token"),
    );
    c.t("secret_key", "Sekr1tPw", "connect password={} host=db");
    c.t(
        "secret_key",
        "Sup3rS3cret",
        "mysql -u root --password {} shop",
    );
    c.t(
        "secret_key",
        "zz-998877",
        "{\"apiKey\": \"{}\", \"debug\": true}",
    );
    c.t(
        "secret_key",
        "yaml-pw-1",
        "db:\n  host: x\n  password: {}\n",
    );
    c.t(
        "secret_key",
        "admin:Curl9pw",
        "curl -sS -u {} https://api.example.com/v1",
    );

    // ---- generic_secret (unnamed, high entropy)
    c.t(
        "generic_secret",
        "q8Rt2vLw0ZbX9kPm4sNc7yHj1uEa5GdF3oTiWxYz",
        "tool publish --key {}",
    );
    c.t(
        "generic_secret",
        "Zk3/Qm8vT1xLr+9NpA2sWc6HdYb4FgJe0uKiOt7R",
        "setting_0 = '{}'",
    );
    c.t(
        "generic_secret",
        "mB7qX2vN9kL4pR8sT1wY6zC3fH5jD0gA",
        "export DEPLOY_KEY={}",
    );
    c.t(
        "generic_secret",
        "Hq4Kz9Lm2Nx7Pw3Rt8Vb1Yc6Jd5Fg0SaEuWo+QiXy",
        "{\"setting_7\": \"{}\"}",
    );
    c.t(
        "generic_secret",
        "T9xWq2Lp7Zr4Kv1Nm8Bc3Hs6Df0Gj5Ya",
        "deploy --signing-key={} --env prod",
    );
    c.t("generic_secret", "pV3nQ8rZ1xK6mW4tY9bL2cJ7hF0dS5gA", "{}");
    c.t(
        "generic_secret",
        "R2d7Kq9Xm4Lz1Wp8Vt3Nb6Hc0Jf5Gs+Ya/EuIoQw",
        "X-Custom-Auth: {}",
    );
    c.t(
        "generic_secret",
        "W8mZ3qK1xR7vL2pN9tY4bC6hJ0fD5sGaE",
        "client started with key {} (rotated)",
    );

    c.samples
}

/// Strings that look like PII but are not; each must survive unchanged.
const CONTROLS: &[&str] = &[
    // identifiers
    "550e8400-e29b-41d4-a716-446655440000",
    "123e4567-e89b-12d3-a456-426614174000",
    "{6F9619FF-8B86-D011-B42D-00C04FC964FF}",
    "1234567890",
    "order-000123456",
    "req_01HZX3K9V8",
    "9007199254740993",
    "12345678901234567890",
    "id 1700000000000",
    "k8s pod web-7d9f8b6c5-x2k4p",
    "arn:aws:iam::123456789012:role/Admin",
    "0x7fff5fbff8c0",
    "#FF5733",
    // versions
    "1.2.3",
    "v10.4.0-beta.1",
    "2.0.0-rc.1+build.5",
    "python 3.11.7",
    "node v18.17.1",
    "go1.21.5",
    "OpenSSL 3.0.2 15 Mar 2022",
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.6099.109 Safari/537.36",
    "Linux 6.5.0-14-generic x86_64",
    "1.2.3.4-beta",
    "version 10.0.19045.3803",
    // hashes
    "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "9fceb02",
    "a1b2c3d4e5f6",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "d41d8cd98f00b204e9800998ecf8427e",
    // timestamps and durations
    "2024-01-15T10:30:00Z",
    "2024-01-15T10:30:00.123456+01:00",
    "2024-01-15 10:30:00",
    "Mon, 15 Jan 2024 10:30:00 GMT",
    "15/01/2024 10:30",
    "1705314600",
    "1705314600123",
    "10:30:45.123",
    "1500ms",
    "2h30m15s",
    "PT1H30M",
    "took 0.25s (p99 1.2s)",
    // paths
    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    "/var/log/syslog",
    r"C:\Program Files\App\app.exe",
    "/home/",
    "/etc/nginx/nginx.conf",
    "src/main.rs:42:13",
    "/opt/homebrew/bin",
    "~/.bashrc",
    "/Users/Shared/data",
    "at Object.<anonymous> (/app/index.js:10:5)",
    // URLs
    "https://example.com/api/v1/users?page=2&limit=50",
    "http://localhost:8080/health",
    "https://github.com/org/repo/commit/9fceb02",
    "s3://bucket/path/to/object.json",
    "https://medium.com/@author/post-123",
    "ssh://git@github.com/org/repo.git",
    "git@github.com:org/repo.git",
    // misc
    "user@localhost",
    "127",
    "port 8080",
    "localhost:3000",
    "HTTP/1.1 200 OK",
    "GET /api/v1/users/42 HTTP/1.1",
    "std::collections::HashMap::<u64, f64>::new",
    "Error: ENOENT: no such file or directory",
    "tokens used: 1500",
    "Bearer authentication required",
    "Basic auth is disabled",
    "1,234,567.89",
    "$1,299.00 (+5%)",
    "3.14159265358979",
    "ISBN 978-3-16-148410-0",
    "192.168.1",
    "fe80",
    "en-US",
    "SELECT * FROM users WHERE id = 42",
    "icon@2x.png",
    "left-pad@1.3.0",
    "AKIA",
    "ghp_",
    "eyJhbGciOiJIUzI1NiJ9",
    "invalid password: too short",
    "the secret is out",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUR\n-----END CERTIFICATE-----",
    "Ada Lovelace",
    "dimensions 1920x1080",
];

/// Whole events whose keys look like secrets or PII but are not.
fn control_events() -> Vec<Value> {
    vec![
        json!({"usage": {"token_count": 1234, "tokens_used": 99, "max_tokens": 4096, "input_tokens": 12}}),
        json!({"author": "Ada Lovelace", "session_count": 3, "authority": "ca.example.com"}),
        json!({"password_policy": "min 12 chars", "secret_name": "prod/db", "token_type": "Bearer"}),
        json!({"api_key_id": "key-42", "password_expires_at": "2024-06-01T00:00:00Z"}),
        json!({"stats": {"1.2.3": 4, "550e8400-e29b-41d4-a716-446655440000": 1, "2024-01-15": 7}}),
        json!({"tokenizer": "cl100k_base", "keyboard": "us"}),
        json!({"flags": {"password": true, "secret": null}, "empty": {"token": ""}}),
        // Numbers that are not cards: a Luhn failure with a card prefix, epoch
        // milliseconds and nanoseconds, a snowflake id, a small count.
        json!({"ids": {"order": 4111111111111112u64, "ts_ms": 1700000000000u64, "ts_ns": 1700000000000000000u64, "snowflake": 1541815603606036480u64, "count": 4111}}),
    ]
}

fn harness(config: Value) -> Harness<PiiScrub> {
    Harness::<PiiScrub>::new(config).expect("valid config")
}

fn pointer_gone(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).is_none()
}

#[derive(Default)]
struct Row {
    samples: usize,
    caught: usize,
    attributed: usize,
    hash_ok: usize,
    remove_ok: usize,
    misses: Vec<String>,
    misattributed: Vec<String>,
}

const STRUCTURED: &[&str] = &[
    "email",
    "ip",
    "credit_card",
    "ssn",
    "iban",
    "jwt",
    "aws_key",
    "token",
    "bearer",
    "url_password",
    "private_key",
    "home_dir",
    "mac",
    "secret_key",
    "generic_secret",
];

const ALL: &[&str] = &[
    "email",
    "ip",
    "credit_card",
    "ssn",
    "phone",
    "iban",
    "jwt",
    "aws_key",
    "token",
    "bearer",
    "url_password",
    "private_key",
    "home_dir",
    "mac",
    "secret_key",
    "generic_secret",
];

fn all_methods(method: &str) -> Value {
    let map: serde_json::Map<String, Value> =
        ALL.iter().map(|r| (r.to_string(), json!(method))).collect();
    Value::Object(map)
}

#[test]
fn corpus_recall_and_controls() {
    let samples = corpus();
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();

    let mut mask = harness(json!({}));
    let mut hash1 = harness(json!({"hash_key": "corpus-key-1", "detectors": all_methods("hash")}));
    let mut hash1b = harness(json!({"hash_key": "corpus-key-1", "detectors": all_methods("hash")}));
    let mut hash2 = harness(json!({"hash_key": "corpus-key-2", "detectors": all_methods("hash")}));
    let mut remove = harness(json!({"detectors": all_methods("remove")}));

    for s in &samples {
        let row = rows.entry(s.rule).or_default();
        row.samples += 1;
        let needle = json_text(&s.pii);

        // mask (defaults)
        let out = mask.run_one(s.event.clone()).event;
        let text = out.to_string();
        let caught = !text.contains(&needle);
        if caught {
            row.caught += 1;
        } else {
            row.misses.push(format!("{:?} in {}", s.pii, s.event));
        }
        let notes = out
            .pointer("/_wraith/redactions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if notes.iter().any(|n| n["rule"] == s.rule) {
            row.attributed += 1;
        } else if caught {
            row.misattributed
                .push(format!("{:?} -> {}", s.pii, Value::Array(notes.clone())));
        }
        assert!(
            !serde_json::to_string(&notes).unwrap().contains(&needle),
            "annotation leaks {:?}",
            s.pii
        );

        // hash: value gone, stable across runs, different under another key.
        let h1 = hash1.run_one(s.event.clone()).event;
        let h1b = hash1b.run_one(s.event.clone()).event;
        let h2 = hash2.run_one(s.event.clone()).event;
        let hash_gone = !h1.to_string().contains(&needle);
        let stable = h1 == h1b;
        let keyed = s.rule == "home_dir" || h1 != h2;
        if hash_gone && stable && keyed {
            row.hash_ok += 1;
        }

        // remove: value gone and the field with it.
        let r = remove.run_one(s.event.clone()).event;
        let field_gone = s.pointer.as_deref().is_none_or(|p| pointer_gone(&r, p));
        if !r.to_string().contains(&needle) && field_gone {
            row.remove_ok += 1;
        }
    }

    // Controls: strings in every event shape, plus whole events.
    let mut control_total = 0;
    let mut damaged = Vec::new();
    for (i, s) in CONTROLS.iter().enumerate() {
        for k in [i, i + 3] {
            let (ev, _) = shape(k, s);
            control_total += 1;
            let out = mask.run_one(ev.clone()).event;
            if out != ev {
                damaged.push(format!("{s:?} -> {out}"));
            }
        }
    }
    for ev in control_events() {
        control_total += 1;
        let out = mask.run_one(ev.clone()).event;
        if out != ev {
            damaged.push(format!("{ev} -> {out}"));
        }
    }

    // The table.
    println!();
    println!(
        "{:<14} {:>7} {:>7} {:>8} {:>10} {:>7} {:>7}",
        "detector", "samples", "caught", "recall", "attributed", "hash", "remove"
    );
    let mut total = Row::default();
    for (rule, row) in &rows {
        println!(
            "{:<14} {:>7} {:>7} {:>7.1}% {:>10} {:>7} {:>7}",
            rule,
            row.samples,
            row.caught,
            100.0 * row.caught as f64 / row.samples as f64,
            row.attributed,
            row.hash_ok,
            row.remove_ok
        );
        total.samples += row.samples;
        total.caught += row.caught;
        total.attributed += row.attributed;
        total.hash_ok += row.hash_ok;
        total.remove_ok += row.remove_ok;
    }
    println!(
        "{:<14} {:>7} {:>7} {:>7.1}% {:>10} {:>7} {:>7}",
        "TOTAL",
        total.samples,
        total.caught,
        100.0 * total.caught as f64 / total.samples as f64,
        total.attributed,
        total.hash_ok,
        total.remove_ok
    );
    println!(
        "controls: {}/{} survived unchanged ({} distinct strings, {} key-name events)",
        control_total - damaged.len(),
        control_total,
        CONTROLS.len(),
        control_events().len()
    );
    for (rule, row) in &rows {
        for m in &row.misses {
            println!("  missed ({rule}): {m}");
        }
        for m in &row.misattributed {
            println!("  caught by another rule ({rule}): {m}");
        }
    }
    for d in &damaged {
        println!("  damaged: {d}");
    }

    // The bar.
    assert!(CONTROLS.len() >= 60);
    for rule in ALL {
        let row = &rows[rule];
        assert!(row.samples >= 8, "{rule}: only {} samples", row.samples);
        let recall = row.caught as f64 / row.samples as f64;
        if STRUCTURED.contains(rule) {
            assert_eq!(
                row.caught, row.samples,
                "{rule} recall {recall}: {:?}",
                row.misses
            );
        } else {
            assert!(recall >= 0.9, "{rule} recall {recall}: {:?}", row.misses);
        }
        // What was caught was caught by its own detector (the annotation
        // and counters name the right rule).
        assert_eq!(
            row.attributed, row.caught,
            "{rule}: caught by another rule: {:?}",
            row.misattributed
        );
        assert_eq!(row.hash_ok, row.caught, "{rule}: hash");
        assert_eq!(row.remove_ok, row.caught, "{rule}: remove");
    }
    assert!(damaged.is_empty(), "damaged controls: {damaged:#?}");
}

#[test]
fn corpus_counters_match_annotations() {
    let samples = corpus();
    let mut h = harness(json!({}));
    let events: Vec<Value> = samples.iter().map(|s| s.event.clone()).collect();
    let out = h.run(events);
    let mut noted: BTreeMap<String, u64> = BTreeMap::new();
    for p in &out {
        let notes = p
            .event
            .pointer("/_wraith/redactions")
            .and_then(Value::as_array);
        for n in notes.into_iter().flatten() {
            *noted
                .entry(format!("scrubbed_{}", n["rule"].as_str().unwrap()))
                .or_default() += 1;
        }
    }
    let counters = h.counters();
    // Every rule that fired was counted, at least once per annotated field.
    for (name, n) in &noted {
        assert!(
            counters.get(name).copied().unwrap_or(0) >= *n,
            "{name}: {counters:?}"
        );
    }
    assert!(counters.keys().all(|k| noted.contains_key(k)));
}
