//! Where events go after the chain. The embedded default is [`file::FileSink`]:
//! JSON Lines under the data folder.

pub mod file;

/// One line for a sink.
#[derive(Debug, Clone)]
pub struct Record {
    /// Destination folder name: a route name, `events`, or [`DLQ`].
    pub destination: String,
    /// One JSON document, without the trailing newline.
    pub line: Vec<u8>,
}

/// The destination of dead-lettered events.
pub const DLQ: &str = "dlq";

/// Why a sink could not take data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("sink `{sink}` could not write: {message}")]
    Write { sink: &'static str, message: String },
    #[error("sink `{sink}` is shut down")]
    Closed { sink: &'static str },
}
