//! User names in home directory paths.

use super::{Hit, at, before, find_byte2, is_word, starts_with_ci};
use crate::rules::Rule;

/// Where a user name ends inside a path.
fn user_end(b: &[u8], s: usize) -> usize {
    let mut e = s;
    while e < b.len()
        && !matches!(
            b[e],
            b'/' | b'\\'
                | b' '
                | b'\t'
                | b'\n'
                | b'\r'
                | b'"'
                | b'\''
                | b'`'
                | b':'
                | b';'
                | b','
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'<'
                | b'>'
                | b'|'
                | b'&'
                | b'?'
                | b'#'
                | b'='
                | b'*'
        )
    {
        e += 1;
    }
    e
}

/// Placeholders and shared folders that are not a person.
fn not_a_user(u: &[u8]) -> bool {
    u.is_empty()
        || u == b"."
        || u == b".."
        || matches!(u[0], b'$' | b'%' | b'~')
        || [
            &b"Shared"[..],
            b"Public",
            b"Default",
            b"All",
            b"Guest",
            b"USERNAME",
            b"username",
            b"user",
            b"USER",
        ]
        .contains(&u)
}

/// `/home/<u>`, `/Users/<u>` and `C:\Users\<u>` (also `C:/Users/<u>` and the
/// JSON-escaped `C:\\Users\\<u>`) → `~`: `/home/ada/src/x` → `~/src/x`.
/// The prefix must start a path (not `/mnt/home/x`, not a URL path); a
/// `file://` URL counts. `/home/` alone, `$USER`-style placeholders and
/// shared folders (`/Users/Shared`, `C:\Users\Public`) stay.
pub(crate) fn home_dir(b: &[u8], out: &mut Vec<Hit>) {
    let mut i = 0;
    while let Some(next) = find_byte2(b, b'/', b':', i) {
        i = next;
        let c = b[i];
        if c == b'/' {
            let rest = &b[i..];
            let plen = if rest.starts_with(b"/home/") {
                6
            } else if rest.starts_with(b"/Users/") {
                7
            } else {
                i += 1;
                continue;
            };
            let p = before(b, i);
            let starts_path = !(is_word(p) || matches!(p, b'.' | b'-' | b'/' | b'~' | b'$'))
                || (p == b'/' && b[..i].ends_with(b"file://"));
            let us = i + plen;
            let ue = user_end(b, us);
            if starts_path && !not_a_user(&b[us..ue]) {
                out.push(Hit::new(Rule::HomeDir, i, ue));
                i = ue;
            } else {
                i = us;
            }
            continue;
        }
        if c == b':' && i >= 1 && b[i - 1].is_ascii_alphabetic() && !is_word(before(b, i - 1)) {
            let mut pos = i + 1;
            let sep: &[u8] = if at(b, pos) == b'/' {
                b"/"
            } else if b[pos..].starts_with(b"\\\\") {
                b"\\\\"
            } else if at(b, pos) == b'\\' {
                b"\\"
            } else {
                i += 1;
                continue;
            };
            pos += sep.len();
            if !starts_with_ci(&b[pos..], b"users") || !b[pos + 5..].starts_with(sep) {
                i += 1;
                continue;
            }
            pos += 5 + sep.len();
            let ue = user_end(b, pos);
            if !not_a_user(&b[pos..ue]) {
                out.push(Hit::new(Rule::HomeDir, i - 1, ue));
                i = ue;
            } else {
                i = pos;
            }
            continue;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::test_util::check_rule;
    use crate::rules::Rule;

    fn home(i: &str, o: &str) {
        check_rule(Rule::HomeDir, i, o);
    }

    #[test]
    fn home_dirs() {
        home("/home/ada/src/x", "~/src/x");
        home(
            "open(/home/ada/.ssh/id_rsa) failed",
            "open(~/.ssh/id_rsa) failed",
        );
        home("cwd=/home/ada", "cwd=~");
        home("/Users/Ada.Lovelace/Library/Logs", "~/Library/Logs");
        home("file:///Users/ada/notes.txt", "file://~/notes.txt");
        home(r"C:\Users\ada\AppData\Local", r"~\AppData\Local");
        home("C:/Users/ada/Desktop", "~/Desktop");
        home(r"D:\\Users\\ada\\x.txt", r"~\\x.txt");
        home(r"c:\users\Ada\x", r"~\x");
        home("\"/home/grace\"", "\"~\"");
        home("/home/", "/home/");
        home(
            "/home/$USER/x /home/~ /Users/Shared/x",
            "/home/$USER/x /home/~ /Users/Shared/x",
        );
        home(r"C:\Users\Public\Desktop", r"C:\Users\Public\Desktop");
        home("/mnt/home/ada/x", "/mnt/home/ada/x");
        home(
            "https://example.com/home/ada",
            "https://example.com/home/ada",
        );
        home(
            "/usr/lib/x86_64-linux-gnu /var/log",
            "/usr/lib/x86_64-linux-gnu /var/log",
        );
        home(r"C:\Program Files\App", r"C:\Program Files\App");
    }
}
