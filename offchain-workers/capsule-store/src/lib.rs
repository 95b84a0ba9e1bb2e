//! # Capsule store
//!
//! Where capsules live, by content id. A capsule's payload (the age STREAM after its header) is
//! cut into raw blocks of 1 MiB under a UnixFS dag-pb tree, exactly as `ipfs add --cid-version=1
//! --raw-leaves --chunker=size-1048576` does ([`unixfs`]); the root's CIDv1 names the capsule
//! on chain. The header travels beside the payload, stored under the root CID, so re-wrapping
//! a capsule (a new header) never changes its name.
//!
//! [`BlockStore`] is the storage trait: [`FsStore`] (the default, embedded: one file per block,
//! every block re-hashed on read) and [`KuboStore`] (optional: a kubo node's HTTP RPC).
use std::io::{self, Read, Write};

use capsule_primitives::capsule::{CapsuleCid, CidCodec};

pub mod fs;
pub mod kubo;
pub mod unixfs;

pub use fs::FsStore;
pub use kubo::KuboStore;
use unixfs::{decode_node, DagError, TreeBuilder, BLOCK_SIZE, MAX_DEPTH};

/// What can go wrong storing or fetching.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("block {0} is not in the store; `capsule put` it first, or fetch it from its owner")]
    Missing(CapsuleCid),
    #[error("block {0} does not hash to its CID: the store is damaged or the peer lied; delete the block and fetch it again")]
    Corrupt(CapsuleCid),
    #[error("block {cid} is not a node of a capsule's tree: {error}")]
    Dag {
        cid: CapsuleCid,
        #[source]
        error: DagError,
    },
    #[error("no header is stored for capsule {0}; store the capsule with `capsule put`, or pass its header")]
    NoHeader(CapsuleCid),
    #[error("the header stored for capsule {0} has recipients this one lacks; re-wrap the stored capsule (capsule get, then capsule rewrap) instead of putting an older copy, or replace it on purpose")]
    HeaderConflict(CapsuleCid),
    #[error("capsule tree node {cid} declares more than the {max} bytes allowed; raise the limit if the capsule is really that large")]
    TooLarge { cid: CapsuleCid, max: u64 },
    #[error("{0} is not a CIDv1 with a SHA-256 multihash in raw or dag-pb")]
    BadCid(String),
    #[error("the kubo node at {url} answered {status}: {message}; is `ipfs daemon` running with its RPC API there?")]
    Kubo {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "the kubo node stored block {ours} as {theirs}; it must use CIDv1, raw or dag-pb, sha2-256"
    )]
    KuboCid { ours: CapsuleCid, theirs: String },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io { what, source }
}

/// Checks that `block` hashes to `cid` (every CID we use is SHA-256 of the block's bytes).
pub fn verify_block(cid: &CapsuleCid, block: &[u8]) -> Result<(), StoreError> {
    if capsule_primitives::hashing::sha256(block) == cid.digest {
        Ok(())
    } else {
        Err(StoreError::Corrupt(*cid))
    }
}

/// Parses a CID as IPFS prints it (`bafy…`, `bafk…`) into ours.
pub fn parse_cid(text: &str) -> Result<CapsuleCid, StoreError> {
    let parsed = cid::Cid::try_from(text.trim()).map_err(|_| StoreError::BadCid(text.into()))?;
    CapsuleCid::from_bytes(&parsed.to_bytes()).map_err(|_| StoreError::BadCid(text.into()))
}

/// A content-addressed block store.
pub trait BlockStore {
    /// Stores `block` under `cid` (which the caller computed from it).
    fn put(&self, cid: &CapsuleCid, block: &[u8]) -> Result<(), StoreError>;
    /// The block under `cid`, verified against it.
    fn get(&self, cid: &CapsuleCid) -> Result<Vec<u8>, StoreError>;
    /// Whether the store holds `cid`.
    fn has(&self, cid: &CapsuleCid) -> Result<bool, StoreError>;
    /// Stores the header of the capsule named `root`, replacing an older one.
    fn put_header(&self, root: &CapsuleCid, header: &[u8]) -> Result<(), StoreError>;
    /// The header of the capsule named `root`.
    fn get_header(&self, root: &CapsuleCid) -> Result<Vec<u8>, StoreError>;
}

/// Reads up to `buffer.len()` bytes, fewer only at the end.
fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> Result<usize, StoreError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(StoreError::Io {
                    what: "reading the payload",
                    source,
                })
            }
        }
    }
    Ok(filled)
}

/// Stores a payload as 1 MiB raw blocks under its UnixFS tree, streaming (one block in memory);
/// `progress` is told the bytes stored so far. Returns the root CID and the payload length.
pub fn put_payload(
    store: &dyn BlockStore,
    mut payload: impl Read,
    progress: &mut dyn FnMut(u64),
) -> Result<(CapsuleCid, u64), StoreError> {
    let mut builder = TreeBuilder::default();
    let mut buffer = vec![0u8; BLOCK_SIZE];
    let mut total = 0u64;
    loop {
        let filled = read_full(&mut payload, &mut buffer)?;
        if filled == 0 && total > 0 {
            break;
        }
        let block = &buffer[..filled];
        // Hashed once here; the tree takes the CID as it is.
        let cid = CapsuleCid::raw(block);
        for (node_cid, node) in builder.push_leaf_with_cid(cid, filled) {
            store.put(&node_cid, &node)?;
        }
        store.put(&cid, block)?;
        total += filled as u64;
        progress(total);
        if filled < BLOCK_SIZE {
            break;
        }
    }
    let (root, nodes) = builder.finish();
    for (cid, node) in nodes {
        store.put(&cid, &node)?;
    }
    Ok((root.cid, total))
}

/// The root CID [`put_payload`] gives `payload`, computed without storing anything (what an
/// executor puts in its result manifest for an output it seals).
pub fn payload_cid(payload: &[u8]) -> CapsuleCid {
    let mut builder = TreeBuilder::default();
    // As put_payload cuts it: full blocks, then the rest; an empty payload is one empty leaf.
    let mut blocks: Vec<&[u8]> = payload.chunks(BLOCK_SIZE).collect();
    if blocks.is_empty() {
        blocks.push(&[]);
    }
    for block in blocks {
        builder.push_leaf_with_cid(CapsuleCid::raw(block), block.len());
    }
    builder.finish().0.cid
}

/// Writes the payload named `root` to `output`, verifying every block against its CID and the
/// tree against the layout `put_payload` builds: leaves of exactly [`BLOCK_SIZE`] but the last,
/// no empty leaf, at most `max_bytes` in all, and the same root when rebuilt from the leaves.
/// A tree built to make the walk endless or huge fails before its cost grows past `max_bytes`.
/// Returns the payload length.
pub fn get_payload(
    store: &dyn BlockStore,
    root: &CapsuleCid,
    output: &mut impl Write,
    max_bytes: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    let mut walk = Walk {
        store,
        output,
        max_bytes,
        total: 0,
        short_leaf_seen: false,
        rebuilt: TreeBuilder::default(),
        progress,
    };
    walk.subtree(root, None, 0)?;
    let total = walk.total;
    if walk.rebuilt.finish().0.cid != *root {
        return Err(StoreError::Dag {
            cid: *root,
            error: DagError::NotCanonical,
        });
    }
    Ok(total)
}

struct Walk<'a, W> {
    store: &'a dyn BlockStore,
    output: &'a mut W,
    max_bytes: u64,
    total: u64,
    /// A leaf shorter than a block was written: only the last may be.
    short_leaf_seen: bool,
    rebuilt: TreeBuilder,
    progress: &'a mut dyn FnMut(u64),
}

impl<W: Write> Walk<'_, W> {
    fn subtree(
        &mut self,
        cid: &CapsuleCid,
        expected_size: Option<u64>,
        depth: usize,
    ) -> Result<(), StoreError> {
        let dag = |error| StoreError::Dag { cid: *cid, error };
        if depth > MAX_DEPTH {
            return Err(dag(DagError::TooDeep));
        }
        let block = self.store.get(cid)?;
        match cid.codec {
            CidCodec::Raw => {
                let len = block.len() as u64;
                if expected_size.is_some_and(|size| size != len) {
                    return Err(dag(DagError::Sizes));
                }
                let misplaced = self.short_leaf_seen
                    || block.len() > BLOCK_SIZE
                    || (block.is_empty() && depth > 0);
                if misplaced {
                    return Err(dag(DagError::NotCanonical));
                }
                self.short_leaf_seen = block.len() < BLOCK_SIZE;
                self.total += len;
                if self.total > self.max_bytes {
                    return Err(StoreError::TooLarge {
                        cid: *cid,
                        max: self.max_bytes,
                    });
                }
                self.output
                    .write_all(&block)
                    .map_err(io_error("writing the payload"))?;
                self.rebuilt.push_leaf_with_cid(*cid, block.len());
                (self.progress)(self.total);
            }
            CidCodec::DagPb => {
                let links = decode_node(&block).map_err(dag)?;
                let size = links
                    .iter()
                    .try_fold(0u64, |sum, link| sum.checked_add(link.file_size))
                    .ok_or(dag(DagError::Sizes))?;
                if expected_size.is_some_and(|expected| expected != size) {
                    return Err(dag(DagError::Sizes));
                }
                if self.total.saturating_add(size) > self.max_bytes {
                    return Err(StoreError::TooLarge {
                        cid: *cid,
                        max: self.max_bytes,
                    });
                }
                for link in links {
                    self.subtree(&link.cid, Some(link.file_size), depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

/// Stores `header` for the capsule `root` if it keeps every recipient of the header stored
/// before (a re-wrap appends stanzas), so an old copy put again cannot roll a key release
/// back. `replace` stores it anyway.
pub fn put_header_extending(
    store: &dyn BlockStore,
    root: &CapsuleCid,
    header: &[u8],
    replace: bool,
) -> Result<(), StoreError> {
    if !replace {
        match store.get_header(root) {
            Ok(old) if !extends(&old, header) => return Err(StoreError::HeaderConflict(*root)),
            Ok(_) | Err(StoreError::NoHeader(_)) => {}
            Err(other) => return Err(other),
        }
    }
    store.put_header(root, header)
}

/// Whether `new` has every stanza of `old`, in order, followed by its own: `old` up to its MAC
/// line is a prefix of `new`.
fn extends(old: &[u8], new: &[u8]) -> bool {
    let stanzas_end = old
        .windows(4)
        .position(|w| w == b"\n---")
        .map(|i| i + 1)
        .unwrap_or(old.len());
    old == new || new.starts_with(&old[..stanzas_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_extends_another_when_it_keeps_its_stanzas() {
        let old = b"age-encryption.org/v1\n-> X25519 a\nb\n--- mac1\n";
        let new = b"age-encryption.org/v1\n-> X25519 a\nb\n-> X25519 c\nd\n--- mac2\n";
        assert!(extends(old, new));
        assert!(extends(old, old));
        assert!(!extends(new, old));
        let other = b"age-encryption.org/v1\n-> X25519 z\nb\n--- mac3\n";
        assert!(!extends(old, other));
    }

    #[test]
    fn a_payloads_cid_is_the_one_storing_it_gives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsStore::open(dir.path()).expect("store");
        for len in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE,
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (stored, _) = put_payload(&store, payload.as_slice(), &mut |_| {}).expect("puts");
            assert_eq!(payload_cid(&payload), stored, "{len} bytes");
        }
    }
}
