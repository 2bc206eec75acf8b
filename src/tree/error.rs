//! What the file core can fail with. The HTTP layer maps each to a status
//! and a JSON body (`server::error::ApiError`); `chunkcast index` prints it.
//! Causes are kept, so a log line says what really went wrong.

/// A failure of the file core: resolving, listing or indexing a file.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Unknown, hidden or out-of-root names all look the same from outside:
    /// the message never says which, so probing reveals nothing.
    #[error("no such file")]
    NotFound,

    /// A publication's name is taken by a file (see `Catalog::writable`).
    #[error("a file by that name exists")]
    Exists,

    #[error("could not read the file")]
    Io(#[from] std::io::Error),

    #[error("could not index the file")]
    Index(#[source] std::io::Error),

    /// A task on the blocking pool panicked or was cancelled.
    #[error("a background task failed")]
    Task(#[from] tokio::task::JoinError),

    /// The semaphore that bounds listings or index builds was closed; it
    /// never is while the server runs.
    #[error("the server is shutting down")]
    Closed(#[from] tokio::sync::AcquireError),
}
