//! A generated corpus: thousands of events built from a seeded generator,
//! each PII shape in every place a value can sit (message, command line,
//! stack frame, config text, header dump, nested field, list element,
//! object key), with a control that must survive next to each, plus the
//! controls alone in every place.
//!
//! The generator knows the shapes, not the scanners: values are random
//! (valid check digits where the real thing has them), and the templates
//! are the contexts real tools write.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use wraith_plugin::testing::Harness;
use wraith_plugin_pii_scrub::PiiScrub;

/// Samples per detector.
const PER_RULE: usize = 240;
/// Standalone controls (each lands in one place).
const CONTROLS: usize = 2400;

// ------------------------------------------------------------------ rng

#[path = "../../src/testkit.rs"]
mod testkit;
use testkit::Rng;

impl Rng {
    fn chars_between(&mut self, alphabet: &[u8], lo: usize, hi: usize) -> String {
        let n = self.range(lo, hi);
        self.chars(alphabet, n)
    }
}

const HEX: &[u8] = b"0123456789abcdef";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const FIRST: &[&str] = &[
    "ada",
    "grace",
    "alan",
    "linus",
    "margaret",
    "edsger",
    "barbara",
    "donald",
    "frances",
    "ken",
    "dennis",
    "radia",
    "tim",
    "hedy",
    "katherine",
    "john",
    "sophie",
    "yusuf",
    "mei",
    "olga",
    "pavel",
    "ines",
    "kwame",
    "amara",
];
const LAST: &[&str] = &[
    "lovelace", "hopper", "turing", "torvalds", "hamilton", "dijkstra", "liskov", "knuth", "allen",
    "thompson", "ritchie", "perlman", "lee", "lamarr", "johnson", "smith", "wilson",
];

fn b64(bytes: &[u8], url: bool) -> String {
    let a = if url { B64URL } else { B64 };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= n {
                out.push(a[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'@' => "%40".to_string(),
            b'+' => "%2B".to_string(),
            b':' => "%3A".to_string(),
            b'/' => "%2F".to_string(),
            b' ' => "+".to_string(),
            _ => (c as char).to_string(),
        })
        .collect()
}

// ------------------------------------------------------------------ places

/// Where a value sits in an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Message,
    CommandLine,
    StackFrame,
    ConfigText,
    HeaderDump,
    NestedField,
    ListElement,
    ObjectKey,
}

const PLACES: [Place; 8] = [
    Place::Message,
    Place::CommandLine,
    Place::StackFrame,
    Place::ConfigText,
    Place::HeaderDump,
    Place::NestedField,
    Place::ListElement,
    Place::ObjectKey,
];

/// Put `text` in `place`; `field` names the leaf when the value is a field
/// of its own (nested fields only).
fn place(p: Place, text: &str, field: Option<&str>, sibling: Option<&str>, n: usize) -> Value {
    match p {
        Place::Message => json!({"message": text, "level": "error", "seq": n}),
        Place::CommandLine => json!({"process": {
            "command_line": format!("/usr/local/bin/tool --verbose {text}"),
            "pid": 4000 + n,
        }}),
        Place::StackFrame => json!({"error": {"type": "RuntimeError", "stack": [
            "at Object.<anonymous> (/app/index.js:10:5)",
            format!("at handle (/app/lib/run.js:42:13) {text}"),
            "at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
        ]}}),
        Place::ConfigText => json!({"config": {
            "dump": format!("[server]\nport = 8080\n{text}\nworkers = 4\n"),
        }}),
        Place::HeaderDump => json!({"http": {
            "raw_headers": format!("Host: api.example.com\r\nX-Note: {text}\r\nAccept: */*"),
        }}),
        Place::NestedField => {
            let f = field.unwrap_or("detail");
            let mut item = json!({f: text});
            if let Some(s) = sibling {
                item["note"] = json!(s);
            }
            json!({"context": {"app": {"item": item}, "ts": "2026-01-15T10:30:00Z"}})
        }
        Place::ListElement => json!({"tags": ["ok", text, "end"]}),
        Place::ObjectKey => json!({"by_value": {text: {"count": 3}}}),
    }
}

// ------------------------------------------------------------------ PII

/// One generated PII value: what must disappear, the text around it, and a
/// field name when the field's name is the context.
struct Pii {
    value: String,
    text: String,
    field: Option<&'static str>,
    /// The template's text on either side of the value (`None` when the
    /// value is not placed by a template): a match that leaves a byte of
    /// the value next to it shows as that text beside the byte.
    around: Option<(String, String)>,
}

fn t(value: String, template: &str) -> Pii {
    let text = template.replace("{}", &value);
    let (before, after) = template.split_once("{}").unwrap_or(("", ""));
    Pii {
        value,
        text,
        field: None,
        around: Some((before.to_string(), after.to_string())),
    }
}

fn in_field(value: String, field: &'static str) -> Pii {
    Pii {
        text: value.clone(),
        value,
        field: Some(field),
        around: None,
    }
}

/// Whether a byte of `pii`'s value survived beside the text around it (the
/// match started late or ended early).
fn partly_kept(pii: &Pii, serialized: &str) -> bool {
    let (Some(first), Some(last), Some((before, after))) = (
        pii.value.chars().next(),
        pii.value.chars().last(),
        &pii.around,
    ) else {
        return false;
    };
    // At the end of the template, the neighbour follows after ` | `.
    let after = if after.is_empty() { " | " } else { after };
    (!before.is_empty() && serialized.contains(&json_text(&format!("{before}{first}"))))
        || serialized.contains(&json_text(&format!("{last}{after}")))
}

fn email_addr(r: &mut Rng) -> String {
    let sep = *r.pick(&[".", "_", "+", "-", ""]);
    let mut local = format!("{}{sep}{}", r.pick(FIRST), r.pick(LAST));
    if r.chance(30) {
        local.push_str(&r.digits(2));
    }
    let domain = *r.pick(&[
        "example.com",
        "example.org",
        "mail.example.net",
        "corp-mail.example.io",
        "example.co.uk",
    ]);
    format!("{local}@{domain}")
}

fn email(r: &mut Rng) -> Pii {
    let a = email_addr(r);
    match r.below(10) {
        0 => t(a, "failed to send mail to {} (550 mailbox unavailable)"),
        1 => t(a, "From: Ada <{}>"),
        2 => t(a, "user={} logged in via SSO"),
        3 => t(a, "mailto:{}?subject=hello"),
        4 => t(a, "{\"email\": \"{}\"}"),
        // Percent-encoded, in query strings, form bodies and redirect URLs.
        5 => t(percent_encode(&a), "GET /login?next=%2Fhome&email={}&x=1"),
        6 => t(
            percent_encode(&a),
            "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fu%3D{}%26s%3D1",
        ),
        7 => t(percent_encode(&a), "name=Ada+Lovelace&contact={}&plan=pro"),
        // JSON-escaped inside a string.
        8 => t(a.replace('@', "\\u0040"), "{\\\"user\\\": \\\"{}\\\"}"),
        _ => t(a, "invite sent to {}. Next: onboarding"),
    }
}

fn ipv4(r: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        r.range(1, 223),
        r.below(256),
        r.below(256),
        r.range(1, 254)
    )
}

fn ipv6(r: &mut Rng) -> String {
    let g = |r: &mut Rng| format!("{:x}", r.range(0x1000, 0xffff));
    match r.below(3) {
        0 => format!("2001:db8:{}::{}", g(r), r.range(1, 9)),
        1 => format!("fe80::{}:{}:{}:{}", r.range(1, 9), g(r), g(r), g(r)),
        _ => (0..8)
            .map(|k| if k == 3 { r.digits(4) } else { g(r) })
            .collect::<Vec<_>>()
            .join(":"),
    }
}

fn ip(r: &mut Rng) -> Pii {
    match r.below(14) {
        11 => t(ipv4(r), "X-Real-IP: {}"),
        12 => t(ipv4(r), "via {} (nat)"),
        13 => Pii {
            field: Some("firmware_version"),
            ..t(ipv4(r), "reported by host {}")
        },
        0 => t(ipv4(r), "connection from {} refused"),
        1 => t(ipv4(r), "upstream {}:8080 timed out after 30s"),
        2 => t(ipv4(r), "X-Forwarded-For: {}"),
        3 => t(ipv4(r), "client_ip={} status=502"),
        4 => t(ipv4(r), "GET http://{}/health"),
        5 => t(ipv4(r), "dns: query to {} failed: SERVFAIL"),
        6 => t(ipv4(r), "host {} unreachable"),
        // An address inside a field named for a version is still an address.
        7 => Pii {
            field: Some("driver_version"),
            ..t(ipv4(r), "ip={}")
        },
        8 => t(ipv6(r), "bind [{}]:443"),
        9 => t(ipv6(r), "peer {} closed the stream"),
        _ => in_field(ipv4(r), "remote_addr"),
    }
}

fn luhn_complete(d: &mut Vec<u8>) {
    let mut sum = 0;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = x as u32;
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    d.push(((10 - sum % 10) % 10) as u8);
}

fn card_number(r: &mut Rng) -> String {
    let (prefix, len): (&str, usize) = *r.pick(&[
        ("4", 16),
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("3530", 16),
        ("4", 13),
    ]);
    let mut d: Vec<u8> = prefix.bytes().map(|c| c - b'0').collect();
    while d.len() < len - 1 {
        d.push(r.below(10) as u8);
    }
    luhn_complete(&mut d);
    let s: String = d.iter().map(|x| (b'0' + x) as char).collect();
    let sep = *r.pick(&["", " ", "-"]);
    if sep.is_empty() || len == 13 {
        return s;
    }
    let groups: &[usize] = if len == 15 { &[4, 6, 5] } else { &[4, 4, 4, 4] };
    let mut out = Vec::new();
    let mut k = 0;
    for g in groups {
        out.push(&s[k..k + g]);
        k += g;
    }
    out.join(sep)
}

fn credit_card(r: &mut Rng) -> Pii {
    let n = card_number(r);
    match r.below(6) {
        0 => t(n, "payment declined for card {}"),
        1 => t(n, "cc={}&exp=12/25"),
        2 => t(n, "card number: {}"),
        3 => t(n, "{\"pan\": \"{}\"}"),
        4 => t(n, "charge ok: {} (visa)"),
        _ => t(n, "PAN {} exp 09/27"),
    }
}

fn ssn_digits(r: &mut Rng) -> String {
    let area = loop {
        let a = r.range(1, 899);
        if a != 666 {
            break a;
        }
    };
    format!("{area:03}{:02}{:04}", r.range(1, 99), r.range(1, 9999))
}

fn ssn(r: &mut Rng) -> Pii {
    let d = ssn_digits(r);
    let dashed = format!("{}-{}-{}", &d[..3], &d[3..5], &d[5..]);
    let grouped = match r.below(4) {
        0 => d.clone(),
        1 => format!("{} {} {}", &d[..3], &d[3..5], &d[5..]),
        2 => format!("{}.{}.{}", &d[..3], &d[3..5], &d[5..]),
        _ => dashed.clone(),
    };
    match r.below(13) {
        10 => t(grouped, "SSN number: {}"),
        11 => t(grouped, "Social Security No. {}"),
        12 => t(grouped, "taxpayer id={}"),
        // Unlabelled: the dashed form only.
        0 => t(dashed, "record 17: {}, DOB 1970-01-01"),
        1 => t(dashed, "applicant {} verified"),
        // Labelled: any grouping.
        2 => t(grouped, "SSN: {}"),
        3 => t(grouped, "ssn={}"),
        4 => t(grouped, "social security number {}"),
        5 => t(grouped, "Tax ID: {}"),
        6 => t(grouped, "{\"ssn\": \"{}\"}"),
        7 => t(grouped, "customer SSN {} on file"),
        8 => in_field(grouped, "ssn"),
        _ => in_field(grouped, "social_security_number"),
    }
}

fn phone(r: &mut Rng) -> Pii {
    let area = format!("{}{}", r.range(2, 9), r.digits(2));
    let n = match r.below(10) {
        0 => format!("+44 20 {} {}", r.digits(4), r.digits(4)),
        1 => format!("+1 ({area}) {}-{}", r.digits(3), r.digits(4)),
        2 => format!("+49151{}", r.digits(8)),
        3 => format!("({area}) {}-{}", r.digits(3), r.digits(4)),
        4 => format!("{area}-{}-{}", r.digits(3), r.digits(4)),
        5 => format!("{area}.{}.{}", r.digits(3), r.digits(4)),
        6 => format!("1-800-{}-{}", r.digits(3), r.digits(4)),
        7 => format!(
            "+33 1 {} {} {} {}",
            r.digits(2),
            r.digits(2),
            r.digits(2),
            r.digits(2)
        ),
        8 => format!("020 {} {}", r.digits(4), r.digits(4)),
        _ => format!("06-{}", r.digits(8)),
    };
    match r.below(5) {
        0 => t(n, "call {} now"),
        1 => t(n, "phone: {}"),
        2 => t(n, "tel:{}"),
        3 => t(n, "sms to {} failed (code 21211)"),
        _ => t(n, "Contact: Ada, {}, London"),
    }
}

fn iban(r: &mut Rng) -> Pii {
    let (cc, bban): (&str, String) = match r.below(6) {
        0 => ("DE", r.digits(18)),
        1 => (
            "GB",
            format!(
                "{}{}",
                r.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                r.digits(14)
            ),
        ),
        2 => (
            "NL",
            format!(
                "{}{}",
                r.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                r.digits(10)
            ),
        ),
        3 => ("ES", r.digits(20)),
        4 => ("FR", r.digits(23)),
        _ => ("BE", r.digits(12)),
    };
    let rearranged = format!("{bban}{cc}00");
    let mut rem = 0u32;
    for c in rearranged.bytes() {
        rem = if c.is_ascii_digit() {
            (rem * 10 + (c - b'0') as u32) % 97
        } else {
            (rem * 100 + (c - b'A' + 10) as u32) % 97
        };
    }
    let compact = format!("{cc}{:02}{bban}", 98 - rem);
    let value = if r.chance(50) {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        compact
    };
    match r.below(4) {
        0 => t(value, "IBAN: {}"),
        1 => t(value, "transfer to {} completed"),
        2 => t(value, "iban={}&bic=ABNANL2A"),
        _ => t(value, "payout account {} (verified)"),
    }
}

fn jwt_value(r: &mut Rng) -> String {
    let alg = *r.pick(&["HS256", "RS256", "ES256"]);
    let header = b64(
        format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}").as_bytes(),
        true,
    );
    let payload = b64(
        format!(
            "{{\"sub\":\"{}\",\"iat\":{}}}",
            r.chars(ALNUM, 10),
            r.range(1_600_000_000, 1_900_000_000)
        )
        .as_bytes(),
        true,
    );
    format!("{header}.{payload}.{}", r.chars(B64URL, 43))
}

fn jwt(r: &mut Rng) -> Pii {
    let v = jwt_value(r);
    match r.below(4) {
        0 => t(v, "jwt={}&state=xyz"),
        1 => t(v, "id_token {}"),
        2 => t(v, "verify({}) failed: token expired"),
        _ => t(v, "https://app.example.com/cb?jwt={}#x"),
    }
}

fn aws_secret_value(r: &mut Rng) -> String {
    loop {
        let s = r.chars(B64, 40);
        // AWS never starts or ends a secret with `/`.
        if !s.starts_with('/') && !s.ends_with('/') {
            return s;
        }
    }
}

fn aws_key(r: &mut Rng) -> Pii {
    let id = format!("{}{}", r.pick(&["AKIA", "ASIA"]), r.chars(UPPER_DIGITS, 16));
    match r.below(6) {
        0 => t(id, "using access key {}"),
        1 => t(id, "aws_access_key_id={}"),
        2 => t(id, "{\"AccessKeyId\": \"{}\"}"),
        3 => t(aws_secret_value(r), "aws_secret_access_key = {}"),
        4 => t(
            aws_secret_value(r),
            "export AWS_SECRET_ACCESS_KEY={} && terraform apply",
        ),
        _ => in_field(aws_secret_value(r), "aws_secret_access_key"),
    }
}

fn vendor_token(r: &mut Rng) -> String {
    match r.below(18) {
        0 => format!("ghp_{}", r.chars(ALNUM, 36)),
        1 => format!("github_pat_{}_{}", r.chars(ALNUM, 22), r.chars(ALNUM, 59)),
        2 => format!("glpat-{}", r.chars(ALNUM, 20)),
        3 => format!(
            "xoxb-{}-{}-{}",
            r.digits(12),
            r.digits(13),
            r.chars(ALNUM, 24)
        ),
        4 => format!(
            "xapp-1-A0{}-{}-{}",
            r.digits(9),
            r.digits(13),
            r.chars(HEX, 64)
        ),
        5 => format!("sk_live_{}", r.chars(ALNUM, 24)),
        6 => format!("sk-ant-api03-{}AA", r.chars(B64URL, 93)),
        7 => format!("sk-proj-{}", r.chars(B64URL, 48)),
        8 => format!("sk-{}", r.chars(ALNUM, 48)),
        9 => format!("SK{}", r.chars(HEX, 32)),
        10 => format!("SG.{}.{}", r.chars(B64URL, 22), r.chars(B64URL, 43)),
        11 => format!("shpat_{}", r.chars(HEX, 32)),
        12 => format!("pypi-AgEIcHlwaS5vcmc{}", r.chars(B64URL, 60)),
        13 => format!("dckr_pat_{}", r.chars(B64URL, 27)),
        14 => format!("hf_{}", r.chars(ALPHA, 34)),
        15 => format!("dop_v1_{}", r.chars(HEX, 64)),
        16 => format!("npm_{}", r.chars(ALNUM, 36)),
        _ => format!("AIza{}", r.chars(B64URL, 35)),
    }
}

fn token(r: &mut Rng) -> Pii {
    let v = vendor_token(r);
    match r.below(5) {
        0 => t(v, "using {} for upload"),
        1 => t(v, "client init with {}"),
        2 => t(v, "{}"),
        3 => t(v, "GITHUB_TOKEN={} ./release.sh"),
        _ => t(v, "{\"key\": \"{}\"}"),
    }
}

fn bearer(r: &mut Rng) -> Pii {
    match r.below(5) {
        0 => t(r.chars(B64URL, 32), "Authorization: Bearer {}"),
        1 => t(r.chars(ALNUM, 24), "upstream rejected Bearer {} (expired)"),
        2 => t(r.chars(ALNUM, 20), "bearer {}"),
        3 => {
            let cred = format!("{}:{}", r.pick(FIRST), r.chars(ALNUM, 10));
            t(b64(cred.as_bytes(), false), "Proxy-Authorization: Basic {}")
        }
        _ => {
            let cred = format!("{}:{}", r.pick(LAST), r.chars(ALNUM, 12));
            t(b64(cred.as_bytes(), false), "Authorization: Basic {}")
        }
    }
}

fn url_password(r: &mut Rng) -> Pii {
    let pw = r.chars_between(ALNUM, 8, 16);
    let user = *r.pick(FIRST);
    let url = match r.below(5) {
        0 => format!("postgres://{user}:{{}}@db.internal:5432/prod"),
        1 => format!("mysql://{user}:{{}}@10.1.2.3:3306/app"),
        2 => "redis://:{}@cache:6379/0".to_string(),
        3 => format!("amqp://{user}:{{}}@rabbit.local:5672/"),
        _ => format!("https://{user}:{{}}@git.example.com/repo.git"),
    };
    let template = match r.below(3) {
        0 => format!("connecting to {url}"),
        1 => format!("DATABASE_URL={url}"),
        _ => format!("error: could not connect ({url})"),
    };
    t(pw, &template)
}

fn private_key(r: &mut Rng) -> Pii {
    let label = *r.pick(&[
        "RSA PRIVATE KEY",
        "PRIVATE KEY",
        "EC PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
    ]);
    let body = r.chars(B64, 64);
    let nl = if r.chance(30) { "\\n" } else { "\n" };
    let block = format!(
        "-----BEGIN {label}-----{nl}{body}{nl}{}{nl}-----END {label}-----",
        r.chars(B64, 40)
    );
    let template = match r.below(3) {
        0 => "loaded key:\n{}\n",
        1 => "{}",
        _ => "tls.key={} (from /etc/ssl)",
    };
    Pii {
        text: template.replace("{}", &block),
        value: body,
        field: None,
        around: None,
    }
}

fn home_dir(r: &mut Rng) -> Pii {
    let u = match r.below(3) {
        0 => r.pick(FIRST).to_string(),
        1 => format!("{}.{}", r.pick(FIRST), r.pick(LAST)),
        _ => format!("{}{}", r.pick(FIRST), r.digits(2)),
    };
    match r.below(6) {
        0 => t(
            format!("/home/{u}"),
            "open {}/src/app/main.py: permission denied",
        ),
        1 => t(
            format!("/Users/{u}"),
            "log file {}/Library/Logs/app.log rotated",
        ),
        2 => t(
            format!("C:\\Users\\{u}"),
            "copying {}\\AppData\\Local\\Temp\\x.tmp",
        ),
        3 => t(format!("C:/Users/{u}"), "saved {}/Desktop/report.xlsx"),
        4 => t(format!("/home/{u}"), "cwd={}"),
        _ => t(
            format!("/home/{u}"),
            "File \"{}/venv/lib/python3.11/site-packages/x.py\", line 10, in run",
        ),
    }
}

fn mac(r: &mut Rng) -> Pii {
    let octets: Vec<String> = (0..6).map(|_| r.chars(HEX, 2)).collect();
    match r.below(7) {
        0 => t(octets.join(":"), "eth0: link up, hwaddr {}"),
        1 => t(
            octets.join("-").to_uppercase(),
            "dhcp: lease for {} expired",
        ),
        2 => t(octets.join(":"), "arp: ? (10.0.0.1) at {} on en0"),
        3 => {
            let h = octets.concat();
            t(
                format!("{}.{}.{}", &h[..4], &h[4..8], &h[8..]),
                "cisco port Gi0/1 learned {}",
            )
        }
        // The all-digit Cisco form, labelled.
        4 => {
            let d = r.digits(12);
            t(
                format!("{}.{}.{}", &d[..4], &d[4..8], &d[8..]),
                "mac address {}",
            )
        }
        5 => {
            let d = r.digits(12);
            in_field(
                format!("{}.{}.{}", &d[..4], &d[4..8], &d[8..]),
                "mac_address",
            )
        }
        _ => t(octets.join(":"), "{\"mac\": \"{}\"}"),
    }
}

fn secret_key(r: &mut Rng) -> Pii {
    let v = format!("{}{}", r.chars_between(ALNUM, 6, 10), r.digits(2));
    match r.below(8) {
        0 => t(v, "connect password={} host=db"),
        1 => t(v, "mysql -u root --password {} shop"),
        2 => t(v, "{\"apiKey\": \"{}\", \"debug\": true}"),
        3 => t(v, "db:\n  password: {}"),
        4 => in_field(v, "db_password"),
        5 => in_field(v, "client_secret"),
        6 => in_field(v, "x-api-key"),
        _ => t(v, "spring.datasource.password={}"),
    }
}

fn generic_secret(r: &mut Rng) -> Pii {
    let v = if r.chance(60) {
        r.chars(B64, 40)
    } else {
        r.chars_between(ALNUM, 32, 48)
    };
    match r.below(11) {
        // A short label word right before the value.
        7 => t(v, "key={}"),
        8 => t(v, "sync --key {} --dry-run"),
        9 => t(v, "login pw={} user=svc"),
        10 => t(v, "tok={}"),
        0 => t(v, "tool publish --key {}"),
        1 => t(v, "setting_0 = '{}'"),
        2 => t(v, "deploy --signing-key={} --env prod"),
        3 => t(v, "export DEPLOY_KEY={}"),
        4 => t(v, "{\"setting_7\": \"{}\"}"),
        5 => t(v, "X-Custom-Auth: {}"),
        _ => t(v, "{}"),
    }
}

type Gen = fn(&mut Rng) -> Pii;

const GENERATORS: &[(&str, Gen)] = &[
    ("email", email),
    ("ip", ip),
    ("credit_card", credit_card),
    ("ssn", ssn),
    ("phone", phone),
    ("iban", iban),
    ("jwt", jwt),
    ("aws_key", aws_key),
    ("token", token),
    ("bearer", bearer),
    ("url_password", url_password),
    ("private_key", private_key),
    ("home_dir", home_dir),
    ("mac", mac),
    ("secret_key", secret_key),
    ("generic_secret", generic_secret),
];

// ------------------------------------------------------------------ controls

/// A control: text that must survive, and the field name it may sit under.
struct Control {
    kind: &'static str,
    text: String,
    field: Option<&'static str>,
}

fn c(kind: &'static str, text: String) -> Control {
    Control {
        kind,
        text,
        field: None,
    }
}

fn quad(r: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        r.range(1, 30),
        r.below(30),
        r.below(250),
        r.below(250)
    )
}

fn uuid(r: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-{}{}-{}",
        r.chars(HEX, 8),
        r.chars(HEX, 4),
        r.chars(HEX, 3),
        r.pick(&["8", "9", "a", "b"]),
        r.chars(HEX, 3),
        r.chars(HEX, 12)
    )
}

fn control(r: &mut Rng) -> Control {
    match r.below(15) {
        0 => {
            let q = quad(r);
            let t = *r.pick(&[
                "\"driver_version\": \"{}\"",
                "os_version={}",
                "firmware {}",
                "v{}",
                "version {}",
                "build {}",
                "driver {}",
                "osVersion: {}",
                "kernel {}",
                "release {}",
                "fw {}",
                "BIOS {}",
                "\"build\": \"{}\"",
                "version is {}",
            ]);
            c("version", t.replace("{}", &q))
        }
        1 => Control {
            field: Some(*r.pick(&["version", "os_version", "driverVersion", "firmware_version"])),
            ..c("version", quad(r))
        },
        2 => c(
            "commit",
            if r.chance(50) {
                format!("commit {}", r.chars(HEX, 40))
            } else {
                format!("at {}", r.chars_between(HEX, 7, 12))
            },
        ),
        3 => c("uuid", uuid(r)),
        4 => c(
            "semver",
            match r.below(3) {
                0 => format!("{}.{}.{}", r.below(20), r.below(40), r.below(100)),
                1 => format!(
                    "v{}.{}.{}-rc.{}",
                    r.below(20),
                    r.below(40),
                    r.below(100),
                    r.range(1, 9)
                ),
                _ => format!(
                    "{}.{}.{}+build.{}",
                    r.below(5),
                    r.below(20),
                    r.below(50),
                    r.below(999)
                ),
            },
        ),
        5 => c(
            "timestamp",
            match r.below(3) {
                0 => format!(
                    "2026-{:02}-{:02}T{:02}:{:02}:{:02}.{}Z",
                    r.range(1, 12),
                    r.range(1, 28),
                    r.below(24),
                    r.below(60),
                    r.below(60),
                    r.digits(3)
                ),
                1 => format!("ts={}", r.range(1_600_000_000, 1_900_000_000)),
                _ => format!("{}", r.range(1_600_000_000_000, 1_900_000_000_000)),
            },
        ),
        6 => c(
            "duration",
            match r.below(3) {
                0 => format!("took {}ms", r.range(1, 99_999)),
                1 => format!("{}h{}m{}s", r.below(24), r.below(60), r.below(60)),
                _ => format!("p99 {}.{}s", r.below(10), r.digits(2)),
            },
        ),
        7 => c(
            "numeric_id",
            format!(
                "{} {}",
                r.pick(&["order", "id=", "job", "ticket #", "build"]),
                r.range(1_000_000, 99_999_999)
            ),
        ),
        8 => c(
            "path",
            r.pick(&[
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/var/log/nginx/access.log",
                "C:\\Windows\\System32\\drivers\\etc\\hosts",
                "/opt/app/bin/server",
                "/etc/ssl/certs/ca-certificates.crt",
                "/Users/Shared/data",
                "/home/",
            ])
            .to_string(),
        ),
        9 => c(
            "error_type",
            r.pick(&[
                "ConnectionRefusedError",
                "java.lang.NullPointerException",
                "std::io::Error",
                "KeyError: 'user_id'",
                "ECONNRESET",
                "System.InvalidOperationException",
                "TypeError: Cannot read properties of undefined",
            ])
            .to_string(),
        ),
        10 => c(
            "user_at",
            r.pick(&[
                "git@github.com:org/repo.git",
                "user@localhost",
                "icon@2x.png",
                "left-pad@1.3.0",
                "@types/node@20.1.0",
                "postgres@db",
            ])
            .to_string(),
        ),
        11 => {
            // base64 of ordinary content
            let text = format!(
                "{} {} finished step {} of {}",
                r.pick(FIRST),
                r.pick(LAST),
                r.below(10),
                r.range(10, 20)
            );
            c(
                "base64_text",
                format!("payload {}", b64(text.as_bytes(), false)),
            )
        }
        12 => c(
            "file_hash",
            match r.below(3) {
                0 => format!("sha256 {}  dist/app.tar.gz", r.chars(HEX, 64)),
                1 => format!("\"integrity\": \"sha512-{}==\"", r.chars(B64, 86)),
                _ => format!("h1:{}=", r.chars(B64, 43)),
            },
        ),
        13 => c(
            "stack_identifier",
            match r.below(3) {
                0 => format!(
                    "_ZN4core3ptr85drop_in_place$LT$alloc..vec..Vec$GT$17h{}E",
                    r.chars(HEX, 16)
                ),
                1 => format!(
                    "at com.example.billing.InvoiceService{}.processPayment(InvoiceService.java:{})",
                    r.range(1, 9),
                    r.range(10, 999)
                ),
                _ => format!("AbstractSingletonProxyFactoryBean{}Handler", r.range(1, 9)),
            },
        ),
        _ => c("uuid", format!("request {}", uuid(r))),
    }
}

// ------------------------------------------------------------------ the test

fn json_text(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap();
    q[1..q.len() - 1].to_string()
}

#[derive(Default)]
struct Row {
    samples: usize,
    caught: usize,
    attributed: usize,
    places: std::collections::BTreeSet<Place>,
    misses: Vec<String>,
    /// Caught, but a byte of the value was left beside the mask.
    partial: Vec<String>,
}

#[test]
fn generated_corpus_recall_and_controls() {
    let mut r = Rng(0x5eed_2026_c0ff_ee01);
    let mut h = Harness::<PiiScrub>::new(json!({})).expect("valid config");
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut damaged = Vec::new();
    let mut n = 0;

    for (rule, generate) in GENERATORS {
        let row = rows.entry(rule).or_default();
        for k in 0..PER_RULE {
            let pii = generate(&mut r);
            let mut neighbour = control(&mut r);
            // A control that relies on its field's name says it inline.
            if let Some(f) = neighbour.field.take() {
                neighbour.text = format!("{f}={}", neighbour.text);
            }
            // A value labelled by its field sits in that field; the rest go
            // round every place in turn.
            let p = if pii.field.is_some() {
                Place::NestedField
            } else {
                PLACES[k % PLACES.len()]
            };
            // Next to the value: in the same text, or (for a value that is
            // a whole field, perhaps redacted whole by its name) in a
            // sibling field.
            let event = if pii.field.is_some() {
                place(p, &pii.text, pii.field, Some(&neighbour.text), n)
            } else {
                place(
                    p,
                    &format!("{} | {}", pii.text, neighbour.text),
                    None,
                    None,
                    n,
                )
            };
            n += 1;
            let out = h.run_one(event.clone()).event;
            let serialized = out.to_string();
            row.samples += 1;
            row.places.insert(p);
            let mut gone = !serialized.contains(&json_text(&pii.value));
            if gone && partly_kept(&pii, &serialized) {
                // Not a catch: part of the value is still there.
                row.partial.push(format!("{event} -> {out}"));
                gone = false;
            }
            let notes = out
                .pointer("/_wraith/redactions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if gone {
                row.caught += 1;
                if notes.iter().any(|n| n["rule"] == *rule) {
                    row.attributed += 1;
                } else {
                    row.misses
                        .push(format!("by another rule: {event} -> {out}"));
                }
            } else {
                row.misses.push(format!("{event} -> {out}"));
            }
            let kept = kinds.entry(neighbour.kind).or_default();
            kept.0 += 1;
            if serialized.contains(&json_text(&neighbour.text)) {
                kept.1 += 1;
            } else {
                damaged.push(format!("next to {rule}: {:?} in {out}", neighbour.text));
            }
        }
    }

    // Controls alone, in every place: the event must come out unchanged.
    for k in 0..CONTROLS {
        let ctl = control(&mut r);
        let p = if ctl.field.is_some() {
            Place::NestedField
        } else {
            PLACES[k % PLACES.len()]
        };
        let event = place(p, &ctl.text, ctl.field, None, n);
        n += 1;
        let out = h.run_one(event.clone()).event;
        let kept = kinds.entry(ctl.kind).or_default();
        kept.0 += 1;
        if out == event {
            kept.1 += 1;
        } else {
            damaged.push(format!("alone: {event} -> {out}"));
        }
    }

    println!();
    println!("generated corpus: {n} events");
    println!(
        "{:<16} {:>7} {:>7} {:>8} {:>10} {:>7}",
        "detector", "samples", "caught", "recall", "attributed", "places"
    );
    for (rule, row) in &rows {
        println!(
            "{:<16} {:>7} {:>7} {:>7.2}% {:>10} {:>7}",
            rule,
            row.samples,
            row.caught,
            100.0 * row.caught as f64 / row.samples as f64,
            row.attributed,
            row.places.len()
        );
    }
    println!(
        "{:<18} {:>7} {:>7} {:>8}",
        "control", "placed", "kept", "share"
    );
    let (mut all, mut all_kept) = (0, 0);
    for (kind, (placed, kept)) in &kinds {
        println!(
            "{:<18} {:>7} {:>7} {:>7.2}%",
            kind,
            placed,
            kept,
            100.0 * *kept as f64 / *placed as f64
        );
        all += placed;
        all_kept += kept;
    }
    println!(
        "{:<18} {:>7} {:>7} {:>7.2}%",
        "TOTAL",
        all,
        all_kept,
        100.0 * all_kept as f64 / all as f64
    );
    for (rule, row) in &rows {
        for m in row.misses.iter().take(5) {
            println!("  missed ({rule}): {m}");
        }
        for m in row.partial.iter().take(5) {
            println!("  partly masked ({rule}): {m}");
        }
    }
    for d in damaged.iter().take(30) {
        println!("  damaged: {d}");
    }

    assert!(n >= 5000, "the corpus is {n} events");
    for (rule, _) in GENERATORS {
        let row = &rows[rule];
        let recall = row.attributed as f64 / row.samples as f64;
        assert!(
            recall >= 0.995,
            "{rule}: recall {recall:.4} ({} of {}): {:#?}",
            row.attributed,
            row.samples,
            row.misses
        );
        assert_eq!(row.places.len(), PLACES.len(), "{rule}: {:?}", row.places);
        assert!(
            row.partial.is_empty(),
            "{rule}: {} matches leave a byte of the value: {:#?}",
            row.partial.len(),
            row.partial
        );
    }
    assert!(
        damaged.is_empty(),
        "{} controls damaged: {damaged:#?}",
        damaged.len()
    );
}
