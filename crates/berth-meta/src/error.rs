use berth_oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A manifest references a blob the repository cannot see.
    #[error("blob {0} is not known in this repository")]
    BlobUnknown(Digest),
    /// An index references a manifest the repository does not hold.
    #[error("manifest {0} is not known in this repository")]
    ManifestUnknown(Digest),
    /// Garbage collection is deleting this blob's bytes: committing it now
    /// could record bytes that are about to vanish. Retry the upload later.
    #[error("blob {0} is being garbage-collected; retry the upload")]
    BlobBusy(Digest),
    /// A unique name is taken (a user, later a project or robot).
    #[error("{0} already exists")]
    Conflict(String),
    /// Something a write depends on does not exist (a robot's project).
    #[error("{0} does not exist")]
    NotFound(String),
    /// A value the store's rules refuse (a robot name that does not fit its project, an immutability rule's bad pattern).
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("metadata database error: {0}")]
    Database(String),
    #[error("metadata worker failed: {0}")]
    Worker(String),
}

impl From<rusqlite::Error> for MetaError {
    fn from(e: rusqlite::Error) -> Self {
        MetaError::Database(e.to_string())
    }
}

impl From<tokio_postgres::Error> for MetaError {
    fn from(e: tokio_postgres::Error) -> Self {
        crate::postgres::error_from(e)
    }
}
