//! Where uploaded files are kept outside AWS: in memory (tests) or in a
//! folder (the local run).

use peak_domain::ports::{FileStore, StoreError};

/// Files in memory (tests).
#[derive(Default)]
pub struct MemoryFiles(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

#[async_trait::async_trait]
impl FileStore for MemoryFiles {
    async fn put_file(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned())
    }
}

/// Files in a folder (the local run): `<dir>/<key>`, keys being the
/// `bulk/<tenant>/<ulid>` paths [`start`] makes.
pub struct FolderFiles {
    dir: std::path::PathBuf,
}

impl FolderFiles {
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, key: &str) -> Result<std::path::PathBuf, StoreError> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !safe {
            return Err(StoreError::Backend("invalid file key".into()));
        }
        Ok(self.dir.join(key))
    }
}

#[async_trait::async_trait]
impl FileStore for FolderFiles {
    async fn put_file(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, bytes)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("file write: {e}")))?
        .map_err(|e| StoreError::Unavailable(format!("file write: {e}")))
    }

    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Unavailable(format!("file read: {e}"))),
        })
        .await
        .map_err(|e| StoreError::Backend(format!("file read: {e}")))?
    }
}
