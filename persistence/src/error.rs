//! Errors of the storage layer.

use std::fmt;
use std::path::PathBuf;

/// Why the store could not open or write.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the data directory.
    Locked(PathBuf),
    /// The directory was written by a newer, incompatible format.
    NewerFormat {
        /// Format version found on disk.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The directory was written by an older format this build does not read.
    OlderFormat {
        /// Format version found on disk.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Stored bytes could not be decoded.
    Corrupt(String),
    /// The storage engine failed.
    Engine(fjall::Error),
    /// A file-system operation failed.
    Io(std::io::Error),
    /// Writes are refused: the disk is full, or a write or fsync failed earlier.
    Fault(crate::health::StoreFault),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked(dir) => write!(
                f,
                "the data directory {} is in use by another brooklet-server (it is locked)",
                dir.display()
            ),
            StoreError::NewerFormat { found, supported } => write!(
                f,
                "the data directory was written by a newer Brooklet (format {found}; this build reads up to {supported}); refusing to open it"
            ),
            StoreError::OlderFormat { found, supported } => write!(
                f,
                "the data directory was written by an older Brooklet (format {found}; this build reads format {supported}); refusing to open it rather than misread it"
            ),
            StoreError::Corrupt(what) => write!(f, "corrupt data: {what}"),
            StoreError::Engine(e) => write!(f, "storage engine error: {e}"),
            StoreError::Io(e) => write!(f, "I/O error: {e}"),
            StoreError::Fault(fault) => write!(f, "{fault}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Engine(e) => Some(e),
            StoreError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        StoreError::Engine(e)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}
