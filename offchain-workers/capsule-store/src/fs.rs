//! The embedded store: one file per block under `blocks/`, named by the block's CID, and one
//! header per capsule under `headers/`. Writes go to a temporary file that is synced and renamed,
//! so a crash leaves either the whole block or none; reads re-hash every block.
use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use capsule_primitives::capsule::CapsuleCid;

use crate::{io_error, verify_block, BlockStore, StoreError};

/// A block store in a directory.
#[derive(Clone, Debug)]
pub struct FsStore {
    blocks: PathBuf,
    headers: PathBuf,
}

impl FsStore {
    /// Opens (creating it if needed) the store in `directory`.
    pub fn open(directory: impl AsRef<Path>) -> Result<Self, StoreError> {
        let directory = directory.as_ref();
        let store = Self {
            blocks: directory.join("blocks"),
            headers: directory.join("headers"),
        };
        fs::create_dir_all(&store.blocks)
            .map_err(io_error("creating the store's blocks directory"))?;
        fs::create_dir_all(&store.headers)
            .map_err(io_error("creating the store's headers directory"))?;
        Ok(store)
    }

    fn block_path(&self, cid: &CapsuleCid) -> PathBuf {
        self.blocks.join(cid.to_string())
    }

    fn header_path(&self, root: &CapsuleCid) -> PathBuf {
        self.headers.join(root.to_string())
    }
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, sync, rename.
fn write_atomically(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), StoreError> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(directory).map_err(io_error(what))?;
    file.write_all(bytes).map_err(io_error(what))?;
    file.as_file().sync_all().map_err(io_error(what))?;
    file.persist(path).map_err(|e| StoreError::Io {
        what,
        source: e.error,
    })?;
    Ok(())
}

impl BlockStore for FsStore {
    fn put(&self, cid: &CapsuleCid, block: &[u8]) -> Result<(), StoreError> {
        verify_block(cid, block)?;
        let path = self.block_path(cid);
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, block, "writing a block")
    }

    fn get(&self, cid: &CapsuleCid) -> Result<Vec<u8>, StoreError> {
        let block = match fs::read(self.block_path(cid)) {
            Ok(block) => block,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Missing(*cid)),
            Err(source) => {
                return Err(StoreError::Io {
                    what: "reading a block",
                    source,
                })
            }
        };
        verify_block(cid, &block)?;
        Ok(block)
    }

    fn has(&self, cid: &CapsuleCid) -> Result<bool, StoreError> {
        Ok(self.block_path(cid).exists())
    }

    fn put_header(&self, root: &CapsuleCid, header: &[u8]) -> Result<(), StoreError> {
        write_atomically(&self.header_path(root), header, "writing a header")
    }

    fn get_header(&self, root: &CapsuleCid) -> Result<Vec<u8>, StoreError> {
        match fs::read(self.header_path(root)) {
            Ok(header) => Ok(header),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NoHeader(*root)),
            Err(source) => Err(StoreError::Io {
                what: "reading a header",
                source,
            }),
        }
    }
}
