//! The embedded sink: JSON Lines files, one folder per destination
//! (`<dir>/events/events-000001.jsonl`, `<dir>/dlq/dlq-000001.jsonl`, ...).
//!
//! One writer thread owns the files. Writes from concurrent requests are
//! grouped: the thread takes every job waiting, writes them, flushes and
//! `fsync`s each touched file once, then acknowledges them all — so a 2xx
//! answer means the events are on disk, at the cost of one `fsync` per group
//! rather than per request. Every start opens new files, so a line torn by a
//! crash is never continued.

use super::{BatchMeta, Readiness, Record, Sink, SinkError, SinkFuture};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use tokio::sync::oneshot;

const SINK: &str = "file";

/// Groups waiting for the writer thread at most; past it a write is refused
/// (503) rather than queued without bound.
const QUEUE: usize = 1024;

struct Job {
    records: Vec<Record>,
    done: oneshot::Sender<Result<(), SinkError>>,
}

/// Handle to the writer thread.
pub struct FileSink {
    tx: Mutex<Option<mpsc::SyncSender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    dir: PathBuf,
}

/// How the file sink writes.
#[derive(Debug, Clone)]
pub struct FileSinkOptions {
    /// Start a new file past this many bytes.
    pub rotate_size: u64,
    /// `fsync` before acknowledging.
    pub fsync: bool,
    /// Folder of each destination that is not named after it.
    pub folders: HashMap<String, String>,
}

impl FileSink {
    /// Start the writer. Fails if the folder cannot be created.
    pub fn start(dir: PathBuf, rotate_size: u64, fsync: bool) -> std::io::Result<FileSink> {
        FileSink::with_options(
            dir,
            FileSinkOptions {
                rotate_size,
                fsync,
                folders: HashMap::new(),
            },
        )
    }

    /// Start the writer with destination folders.
    pub fn with_options(dir: PathBuf, options: FileSinkOptions) -> std::io::Result<FileSink> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let mut writer = Writer {
            dir: dir.clone(),
            rotate_size: options.rotate_size,
            fsync: options.fsync,
            folders: options.folders,
            files: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("wraith-file-sink".into())
            .spawn(move || writer.run(rx))?;
        Ok(FileSink {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            dir,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write records durably; resolves once they are on disk.
    pub async fn write_records(&self, records: Vec<Record>) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let tx = self
            .tx
            .lock()
            .expect("file sink lock")
            .clone()
            .ok_or(SinkError::Closed { sink: SINK })?;
        tx.try_send(Job { records, done }).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => SinkError::Unavailable {
                sink: SINK,
                message: format!("{QUEUE} writes are already waiting for the disk"),
            },
            mpsc::TrySendError::Disconnected(_) => SinkError::Closed { sink: SINK },
        })?;
        wait.await.map_err(|_| SinkError::Closed { sink: SINK })?
    }

    /// Stop accepting writes, finish the queued ones and close the files.
    pub fn close(&self) {
        self.tx.lock().expect("file sink lock").take();
        if let Some(t) = self.thread.lock().expect("file sink lock").take() {
            let _ = t.join();
        }
    }
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        SINK
    }

    fn write<'a>(
        &'a self,
        records: Vec<Record>,
        _meta: &'a BatchMeta,
    ) -> SinkFuture<'a, Result<(), SinkError>> {
        Box::pin(self.write_records(records))
    }

    fn readiness(&self) -> Readiness {
        if self.tx.lock().expect("file sink lock").is_some() {
            Readiness::Ready
        } else {
            Readiness::NotReady("shut down".into())
        }
    }

    fn shutdown(&self) -> SinkFuture<'_, ()> {
        Box::pin(async move {
            // Joining the writer blocks: it finishes the queued groups.
            tokio::task::block_in_place(|| self.close());
        })
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        self.close();
    }
}

struct OpenFile {
    out: BufWriter<File>,
    written: u64,
    dirty: bool,
}

struct Writer {
    dir: PathBuf,
    rotate_size: u64,
    fsync: bool,
    folders: HashMap<String, String>,
    files: HashMap<String, OpenFile>,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while let Ok(more) = rx.try_recv() {
                jobs.push(more);
                if jobs.len() >= 1024 {
                    break;
                }
            }
            let result = self.write_group(&jobs).map_err(|e| {
                tracing::error!(error = %e, "file sink write failed; the requests are answered with 503");
                // Start from fresh files after an error: the old ones may end
                // in a partial line.
                self.files.clear();
                SinkError::Write {
                    sink: SINK,
                    message: e.to_string(),
                }
            });
            for job in jobs {
                let _ = job.done.send(result.clone());
            }
        }
        for f in self.files.values_mut() {
            let _ = f.out.flush();
            if self.fsync {
                let _ = f.out.get_ref().sync_data();
            }
        }
    }

    fn write_group(&mut self, jobs: &[Job]) -> std::io::Result<()> {
        for job in jobs {
            for r in &job.records {
                let f = self.file_for(&r.destination)?;
                f.out.write_all(&r.line)?;
                f.out.write_all(b"\n")?;
                f.written += r.line.len() as u64 + 1;
                f.dirty = true;
            }
        }
        for f in self.files.values_mut().filter(|f| f.dirty) {
            f.out.flush()?;
            if self.fsync {
                f.out.get_ref().sync_data()?;
            }
            f.dirty = false;
        }
        // Rotate after the group is durable, so no group spans two files.
        let rotate = self.rotate_size;
        self.files.retain(|_, f| f.written < rotate);
        Ok(())
    }

    fn file_for(&mut self, destination: &str) -> std::io::Result<&mut OpenFile> {
        if !self.files.contains_key(destination) {
            let name = self
                .folders
                .get(destination)
                .map(String::as_str)
                .unwrap_or(destination);
            let folder = self.dir.join(name);
            std::fs::create_dir_all(&folder)?;
            let seq = next_seq(&folder, name)?;
            let path = folder.join(format!("{name}-{seq:06}.jsonl"));
            let mut options = std::fs::OpenOptions::new();
            options.create_new(true).append(true);
            // Dead-lettered events are kept as the rejecting or faulting
            // plugin received them, before any later scrubber: owner-only.
            #[cfg(unix)]
            if destination == super::DLQ {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let file = options.open(&path)?;
            if self.fsync {
                // Make the new directory entry durable too.
                File::open(&folder)?.sync_all()?;
            }
            tracing::debug!(path = %path.display(), "file sink opened a new file");
            self.files.insert(
                destination.to_string(),
                OpenFile {
                    out: BufWriter::with_capacity(256 * 1024, file),
                    written: 0,
                    dirty: false,
                },
            );
        }
        Ok(self.files.get_mut(destination).expect("inserted above"))
    }
}

/// One past the highest sequence number among `<prefix>-NNNNNN.jsonl` files.
fn next_seq(folder: &Path, prefix: &str) -> std::io::Result<u64> {
    let mut max = 0;
    for entry in std::fs::read_dir(folder)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            max = max.max(n);
        }
    }
    Ok(max + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(dest: &str, line: &str) -> Record {
        Record {
            kind: if dest == "dlq" {
                crate::sinks::RecordKind::DeadLetter
            } else {
                crate::sinks::RecordKind::Event
            },
            destination: dest.into(),
            line: bytes::Bytes::copy_from_slice(line.as_bytes()),
            event_id: None,
        }
    }

    fn read_all(dir: &Path, dest: &str) -> Vec<(String, String)> {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(dest))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .into_iter()
            .flat_map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .map(|l| (name.clone(), l.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn writes_rotates_and_restarts_in_new_files() {
        let tmp = tempfile::tempdir().unwrap();
        let sink = FileSink::start(tmp.path().to_path_buf(), 20, true).unwrap();
        sink.write_records(vec![rec("events", "{\"a\":1}"), rec("dlq", "{\"b\":2}")])
            .await
            .unwrap();
        sink.write_records(vec![rec("events", "{\"a\":2222222222222}")])
            .await
            .unwrap();
        sink.write_records(vec![rec("events", "{\"a\":3}")])
            .await
            .unwrap();
        sink.close();
        let events = read_all(tmp.path(), "events");
        assert_eq!(
            events,
            vec![
                ("events-000001.jsonl".into(), "{\"a\":1}".into()),
                ("events-000001.jsonl".into(), "{\"a\":2222222222222}".into()),
                ("events-000002.jsonl".into(), "{\"a\":3}".into()),
            ]
        );
        assert_eq!(
            read_all(tmp.path(), "dlq"),
            vec![("dlq-000001.jsonl".into(), "{\"b\":2}".into())]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                std::fs::metadata(tmp.path().join(p))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(
                mode("dlq/dlq-000001.jsonl"),
                0o600,
                "dead letters are owner-only"
            );
        }
        let sink = FileSink::start(tmp.path().to_path_buf(), 1 << 20, false).unwrap();
        sink.write_records(vec![rec("events", "{\"a\":4}")])
            .await
            .unwrap();
        sink.close();
        let events = read_all(tmp.path(), "events");
        assert_eq!(
            events.last().unwrap(),
            &("events-000003.jsonl".to_string(), "{\"a\":4}".to_string())
        );
    }

    #[tokio::test]
    async fn reports_write_failures() {
        let tmp = tempfile::tempdir().unwrap();
        // A file where the destination folder should be.
        std::fs::write(tmp.path().join("events"), b"in the way").unwrap();
        let sink = FileSink::start(tmp.path().to_path_buf(), 1 << 20, false).unwrap();
        let err = sink
            .write_records(vec![rec("events", "{}")])
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("sink `file` could not write"),
            "{err}"
        );
    }
}
