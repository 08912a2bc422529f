use std::io;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("upload {0} not found in storage")]
    UploadNotFound(String),
    #[error("blob {0} not found in storage")]
    BlobNotFound(String),
    #[error("upload holds {actual} bytes but {expected} were acknowledged")]
    UploadTruncated { expected: u64, actual: u64 },
    #[error("body is larger than the {0} bytes announced")]
    TooLarge(u64),
    #[error("storage is full")]
    Full,
    #[error("reading the request body failed: {0}")]
    Body(io::Error),
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),
}

impl StoreError {
    /// Maps a write error, singling out a full disk (the client is told,
    /// not left to guess from a 500).
    pub(crate) fn from_write(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::Full,
            _ => StoreError::Io(e),
        }
    }
}
