//! API tokens: who may send events, and under which client name.
//!
//! Tokens come from the config (`auth.tokens`), the environment
//! (`WRAITH_API_TOKENS`, put into the config by the binary) and a tokens
//! file (`auth.tokens_file`, `--tokens-file`) that is reread when it
//! changes. Each entry is `token` or `client-name:token`. Only SHA-256
//! digests are kept; a presented token is hashed and compared with every
//! digest in constant time (`subtle`), so neither the comparison nor its
//! length leaks how much of a token was right.

use super::ApiError;
use arc_swap::ArcSwap;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

/// How often the tokens file is looked at for changes.
pub const FILE_POLL: Duration = Duration::from_secs(1);

/// Why the tokens could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Bad { origin: String, message: String },
}

/// One accepted token: its client name and the digest of the token.
#[derive(Clone)]
struct Token {
    client: Arc<str>,
    digest: [u8; 32],
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Split an entry into `(client name, token)`. Without a name, the client
/// is named after the token's digest (`token-1a2b3c4d`), which says which
/// token was used without showing it.
pub fn parse_token(entry: &str) -> Result<(String, String), String> {
    let entry = entry.trim();
    let (name, token) = match entry.split_once(':') {
        Some((name, token)) => (name.trim().to_string(), token.trim().to_string()),
        None => {
            let d = digest(entry.as_bytes());
            let hex: String = d[..4].iter().map(|b| format!("{b:02x}")).collect();
            (format!("token-{hex}"), entry.to_string())
        }
    };
    if token.is_empty() {
        return Err("an empty token (write `token` or `client-name:token`)".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the token of client `{name}` holds spaces or characters that cannot be sent in a header"
        ));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
    {
        return Err(format!(
            "client name {name:?} must be letters, digits, `-`, `_`, `.` or `@`"
        ));
    }
    Ok((name, token))
}

fn parse_all<'a>(
    entries: impl Iterator<Item = (String, &'a str)>,
) -> Result<Vec<Token>, AuthError> {
    let mut out = Vec::new();
    for (origin, e) in entries {
        let (client, token) =
            parse_token(e).map_err(|message| AuthError::Bad { origin, message })?;
        out.push(Token {
            client: client.into(),
            digest: digest(token.as_bytes()),
        });
    }
    Ok(out)
}

fn parse_fixed(entries: &[String]) -> Result<Vec<Token>, AuthError> {
    parse_all(entries.iter().enumerate().map(|(i, e)| {
        (
            format!("auth.tokens[{i}] (or WRAITH_API_TOKENS)"),
            e.as_str(),
        )
    }))
}

/// The lines of a tokens file that hold a token (not blank, not `#` comments).
fn file_entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn read_file(path: &Path) -> Result<Vec<Token>, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_all(file_entries(&text).map(|(n, l)| (format!("{} line {n}", path.display()), l)))
}

/// The accepted tokens, swapped whole when the tokens file changes.
pub struct Auth {
    /// The config's and the environment's tokens (replaced on a config reload).
    fixed: ArcSwap<Vec<Token>>,
    file: Option<PathBuf>,
    current: ArcSwap<Vec<Token>>,
}

/// Who sent a request, as the auth layer found it.
#[derive(Debug, Clone)]
pub struct Client(pub Arc<str>);

impl Auth {
    /// Tokens from `entries` (config and environment) and `file`. A file
    /// that cannot be read or holds a bad line stops the start.
    pub fn new(entries: &[String], file: Option<PathBuf>) -> Result<Auth, AuthError> {
        let fixed = parse_fixed(entries)?;
        let mut all = fixed.clone();
        if let Some(f) = &file {
            all.extend(read_file(f)?);
        }
        Ok(Auth {
            fixed: ArcSwap::from_pointee(fixed),
            file,
            current: ArcSwap::from_pointee(all),
        })
    }

    /// Replace the config's and the environment's tokens (a config reload)
    /// and reread the tokens file. On an error the tokens in use stay.
    pub fn set_fixed(&self, entries: &[String]) -> Result<usize, AuthError> {
        let fixed = parse_fixed(entries)?;
        let mut all = fixed.clone();
        if let Some(f) = &self.file {
            all.extend(read_file(f)?);
        }
        let n = all.len();
        self.fixed.store(Arc::new(fixed));
        self.current.store(Arc::new(all));
        Ok(n)
    }

    /// No tokens at all: every request is let in.
    pub fn open() -> Auth {
        Auth {
            fixed: ArcSwap::from_pointee(Vec::new()),
            file: None,
            current: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// Whether requests need a token. A configured tokens file turns it on
    /// even while empty: it fails closed.
    pub fn enabled(&self) -> bool {
        self.file.is_some() || !self.fixed.load().is_empty()
    }

    /// How many tokens are accepted now.
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reread the tokens file. On an error the tokens in use stay.
    pub fn reload(&self) -> Result<usize, AuthError> {
        let Some(f) = &self.file else {
            return Ok(self.len());
        };
        let mut all = Vec::clone(&self.fixed.load());
        all.extend(read_file(f)?);
        let n = all.len();
        self.current.store(Arc::new(all));
        Ok(n)
    }

    /// Look at the tokens file every [`FILE_POLL`] and reload it when its
    /// modification time or size changed (a rename into place, a
    /// Kubernetes Secret's symlink swap and an edit in place all show).
    pub fn watch(self: &Arc<Self>) {
        let Some(path) = self.file.clone() else {
            return;
        };
        let auth = Arc::downgrade(self);
        tokio::spawn(async move {
            let stamp = |p: &Path| -> Option<(SystemTime, u64)> {
                let m = std::fs::metadata(p).ok()?;
                Some((m.modified().ok()?, m.len()))
            };
            let mut last = stamp(&path);
            let mut tick = tokio::time::interval(FILE_POLL);
            loop {
                tick.tick().await;
                let Some(auth) = auth.upgrade() else { return };
                let now = stamp(&path);
                if now == last {
                    continue;
                }
                last = now;
                match auth.reload() {
                    Ok(n) => tracing::info!(file = %path.display(), tokens = n, "tokens reloaded"),
                    Err(e) => {
                        tracing::warn!(error = %e, "tokens file not reloaded; the tokens in use stay")
                    }
                }
            }
        });
    }

    /// The client a request's token belongs to: `Ok(None)` when tokens are
    /// off, 401 when they are on and the request has no valid one.
    pub fn check(&self, headers: &HeaderMap) -> Result<Option<Arc<str>>, Unauthorized> {
        if !self.enabled() {
            return Ok(None);
        }
        let presented = presented_token(headers)?;
        let d = digest(presented.as_bytes());
        let mut found: Option<Arc<str>> = None;
        // Every digest is compared, matched or not.
        for t in self.current.load().iter() {
            if bool::from(t.digest.ct_eq(&d)) && found.is_none() {
                found = Some(t.client.clone());
            }
        }
        found
            .map(Some)
            .ok_or_else(|| Unauthorized("the token is not valid for this gateway".into()))
    }
}

fn presented_token(headers: &HeaderMap) -> Result<String, Unauthorized> {
    let text = |v: &HeaderValue, name: &str| {
        v.to_str()
            .map(|s| s.trim().to_string())
            .map_err(|_| Unauthorized(format!("the {name} header is not visible ASCII")))
    };
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = text(v, "Authorization")?;
        let (scheme, token) = v.split_once(' ').unwrap_or((v.as_str(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Unauthorized(format!(
                "the Authorization header uses the `{scheme}` scheme; send `Authorization: Bearer TOKEN` or `X-API-Key: TOKEN`"
            )));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(Unauthorized(
                "the Authorization header has an empty bearer token".into(),
            ));
        }
        return Ok(token.to_string());
    }
    if let Some(v) = headers.get("x-api-key") {
        let token = text(v, "X-API-Key")?;
        if token.is_empty() {
            return Err(Unauthorized("the X-API-Key header is empty".into()));
        }
        return Ok(token);
    }
    Err(Unauthorized(
        "a token is required: send `Authorization: Bearer TOKEN` or `X-API-Key: TOKEN`".into(),
    ))
}

/// A 401 with its reason.
#[derive(Debug)]
pub struct Unauthorized(pub String);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut resp =
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", self.0).into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"wraith\""),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn check(auth: &Auth, pairs: &[(&str, &str)], expected: Result<Option<&str>, &str>) {
        match (auth.check(&headers(pairs)), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want),
            (Err(Unauthorized(m)), Err(needle)) => assert!(m.contains(needle), "{m}"),
            (got, want) => panic!("{pairs:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn tokens_name_their_clients() {
        let auth = Auth::new(&["probe-1:s3cret-one".into(), "bare-token".into()], None).unwrap();
        assert!(auth.enabled());
        check(
            &auth,
            &[("authorization", "Bearer s3cret-one")],
            Ok(Some("probe-1")),
        );
        check(
            &auth,
            &[("authorization", "bearer  s3cret-one ")],
            Ok(Some("probe-1")),
        );
        check(&auth, &[("x-api-key", "s3cret-one")], Ok(Some("probe-1")));
        let (name, _) = parse_token("bare-token").unwrap();
        assert!(name.starts_with("token-") && name.len() == 14, "{name}");
        check(&auth, &[("x-api-key", "bare-token")], Ok(Some(&name)));
        check(&auth, &[], Err("a token is required"));
        check(
            &auth,
            &[("authorization", "Bearer s3cret-onf")],
            Err("not valid"),
        );
        check(&auth, &[("authorization", "Bearer ")], Err("empty bearer"));
        check(
            &auth,
            &[("authorization", "Basic abc")],
            Err("`Basic` scheme"),
        );
        check(
            &auth,
            &[("x-api-key", "")],
            Err("X-API-Key header is empty"),
        );
        check(&Auth::open(), &[], Ok(None));
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(parse_token("a:").unwrap_err().contains("empty token"));
        assert!(parse_token("").unwrap_err().contains("empty token"));
        assert!(
            parse_token("bad name:tok")
                .unwrap_err()
                .contains("client name")
        );
        assert!(parse_token("a:to ken").unwrap_err().contains("spaces"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        std::fs::write(&f, "# ops\nops:one\n\n:two\n").unwrap();
        let e = Auth::new(&[], Some(f.clone())).err().unwrap().to_string();
        assert!(e.contains("tokens line 4: client name"), "{e}");
        std::fs::write(&f, "ops:one\n").unwrap();
        let auth = Auth::new(&[], Some(f.clone())).unwrap();
        check(&auth, &[("x-api-key", "one")], Ok(Some("ops")));
        // A reload that fails keeps the tokens in use.
        std::fs::write(&f, "ops:\n").unwrap();
        assert!(auth.reload().is_err());
        check(&auth, &[("x-api-key", "one")], Ok(Some("ops")));
        std::fs::write(&f, "dev:two\n").unwrap();
        assert_eq!(auth.reload().unwrap(), 1);
        check(&auth, &[("x-api-key", "one")], Err("not valid"));
        check(&auth, &[("x-api-key", "two")], Ok(Some("dev")));
        // An empty tokens file still requires a token.
        std::fs::write(&f, "").unwrap();
        let auth = Auth::new(&[], Some(f)).unwrap();
        check(&auth, &[("x-api-key", "two")], Err("not valid"));
    }
}
