//! The on-disk spool: batches the gateway could not take, oldest first.
//!
//! One file per batch, `<seq>.ndjson` (a 20-digit sequence number, so name
//! order is arrival order), holding the exact request body. A batch is
//! written to `.<seq>.tmp`, synced, renamed into place and the folder synced:
//! once `push` returns, the batch survives `kill -9` and a power cut. When
//! the spool would pass its size cap, the oldest batches are deleted and
//! their events counted as dropped.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A spooled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub bytes: u64,
    pub events: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    bytes: u64,
    next_seq: u64,
}

/// What `push` had to drop to stay under the cap.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub batches: u64,
    pub events: u64,
}

fn count_lines(body: &[u8]) -> u64 {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count() as u64
}

impl Spool {
    /// Open (creating) the spool in `dir`; leftovers of an interrupted write
    /// are removed.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        wraith_sdk::settings::create_private_dir(dir)?;
        let mut entries = Vec::new();
        for e in fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".ndjson")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let body = fs::read(e.path())?;
            entries.push(Entry {
                seq,
                bytes: body.len() as u64,
                events: count_lines(&body),
            });
        }
        entries.sort_by_key(|e| e.seq);
        let next_seq = entries.last().map_or(1, |e| e.seq + 1);
        let bytes = entries.iter().map(|e| e.bytes).sum();
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            entries: entries.into(),
            bytes,
            next_seq,
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.ndjson"))
    }

    /// Keep `body` (an NDJSON batch) durably, behind everything already here.
    pub fn push(&mut self, body: &[u8]) -> io::Result<Dropped> {
        let mut dropped = Dropped::default();
        let size = body.len() as u64;
        while !self.entries.is_empty() && self.bytes + size > self.max_bytes {
            let e = self.entries.pop_front().unwrap_or_else(|| unreachable!());
            let _ = fs::remove_file(self.path(e.seq));
            self.bytes -= e.bytes;
            dropped.batches += 1;
            dropped.events += e.events;
        }
        let seq = self.next_seq;
        let tmp = self.dir.join(format!(".{seq:020}.tmp"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(body)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.path(seq))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.next_seq += 1;
        self.bytes += size;
        self.entries.push_back(Entry {
            seq,
            bytes: size,
            events: count_lines(body),
        });
        Ok(dropped)
    }

    /// The oldest batch and its body.
    pub fn oldest(&self) -> Option<(Entry, io::Result<Vec<u8>>)> {
        let e = self.entries.front()?.clone();
        let body = fs::read(self.path(e.seq));
        Some((e, body))
    }

    /// Forget the oldest batch (sent, or refused for good).
    pub fn remove_oldest(&mut self) -> io::Result<()> {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.bytes;
            match fs::remove_file(self.path(e.seq)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn batches(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn events(&self) -> u64 {
        self.entries.iter().map(|e| e.events).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(s: &mut Spool) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((_, b)) = s.oldest() {
            out.push(String::from_utf8(b.unwrap()).unwrap());
            s.remove_oldest().unwrap();
        }
        out
    }

    #[test]
    fn batches_come_back_in_order_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..12 {
            s.push(format!("{{\"n\":{i}}}\n{{\"m\":{i}}}\n").as_bytes())
                .unwrap();
        }
        assert_eq!((s.batches(), s.events()), (12, 24));
        drop(s);
        // A half-written batch from a crash is ignored and cleaned up.
        std::fs::write(dir.path().join(".00000000000000000013.tmp"), "{\"half").unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((s.batches(), s.events()), (12, 24));
        s.push(b"{\"n\":12}\n").unwrap();
        let got = bodies(&mut s);
        assert_eq!(got.len(), 13);
        for (i, b) in got.iter().enumerate() {
            assert!(b.starts_with(&format!("{{\"n\":{i}}}")), "{i}: {b}");
        }
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let body = |i: usize| format!("{{\"n\":{i:03}}}\n{{\"n\":{i:03}}}\n");
        let size = body(0).len() as u64;
        let mut s = Spool::open(dir.path(), size * 3).unwrap();
        let mut dropped = Dropped::default();
        for i in 0..5 {
            let d = s.push(body(i).as_bytes()).unwrap();
            dropped.batches += d.batches;
            dropped.events += d.events;
        }
        assert_eq!(
            dropped,
            Dropped {
                batches: 2,
                events: 4
            }
        );
        assert_eq!(s.bytes(), size * 3);
        assert_eq!(bodies(&mut s), vec![body(2), body(3), body(4)]);
    }
}
