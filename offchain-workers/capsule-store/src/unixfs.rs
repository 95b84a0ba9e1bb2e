//! The payload's content id, computed as `ipfs add --cid-version=1 --raw-leaves
//! --chunker=size-1048576` computes it: the bytes cut into raw blocks of 1 MiB (the last one
//! shorter), linked by UnixFS `File` nodes in dag-pb in the balanced layout (at most 174 links
//! per node, filled left to right). One block is its own CID. The root's CIDv1 names the
//! capsule on chain.
//!
//! Only what that layout needs is encoded. The decoder reads UnixFS file nodes with raw-leaf
//! links and refuses anything else with a typed error; `get_payload` then checks the whole tree
//! is the canonical one (leaf sizes, size limit, the root rebuilt from the leaves), since nodes
//! fetched from a peer are untrusted even when their CIDs match.
use capsule_primitives::capsule::{CapsuleCid, CidCodec};

/// The payload block size: IPFS's soft block limit (1 MiB).
pub const BLOCK_SIZE: usize = 1024 * 1024;
/// Links per node in kubo's balanced layout.
pub const MAX_LINKS: usize = 174;
/// The deepest tree we read: 174^6 MiB is far beyond any capsule.
pub const MAX_DEPTH: usize = 6;

/// Why a block is not a node of our layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("the node is not valid dag-pb protobuf")]
    Protobuf,
    #[error("the node is not a UnixFS file node of the raw-leaves layout")]
    NotAFile,
    #[error("a link is not a CIDv1 with a SHA-256 multihash")]
    BadLink,
    #[error("the node's sizes disagree with its links")]
    Sizes,
    #[error("the tree is deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the tree is not the one `ipfs add --raw-leaves` builds for its leaves")]
    NotCanonical,
}

/// A link from a parent node: the child's CID, its cumulative encoded size (`Tsize`) and the
/// file bytes under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub cid: CapsuleCid,
    pub tsize: u64,
    pub file_size: u64,
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint_field(out: &mut Vec<u8>, field: u8, value: u64) {
    out.push(field << 3);
    put_varint(out, value);
}

/// Encodes a UnixFS file node over `links` (dag-pb: the links first, then the UnixFS data, as
/// the dag-pb spec orders them).
pub fn encode_node(links: &[Link]) -> Vec<u8> {
    let mut data = Vec::new();
    put_varint_field(&mut data, 1, 2); // Type = File
    put_varint_field(&mut data, 3, links.iter().map(|l| l.file_size).sum()); // filesize
    for link in links {
        put_varint_field(&mut data, 4, link.file_size); // blocksizes
    }
    let mut node = Vec::new();
    for link in links {
        let mut encoded = Vec::new();
        put_bytes_field(&mut encoded, 1, &link.cid.to_bytes()); // Hash
        put_bytes_field(&mut encoded, 2, b""); // Name
        put_varint_field(&mut encoded, 3, link.tsize); // Tsize
        put_bytes_field(&mut node, 2, &encoded);
    }
    put_bytes_field(&mut node, 1, &data);
    node
}

/// The CID of a dag-pb block.
pub fn node_cid(node: &[u8]) -> CapsuleCid {
    CapsuleCid {
        codec: CidCodec::DagPb,
        digest: capsule_primitives::hashing::sha256(node),
    }
}

/// A protobuf reader over one message.
struct Fields<'a>(&'a [u8]);

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, DagError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or(DagError::Protobuf)?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DagError::Protobuf)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, DagError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| DagError::Protobuf)?;
                if len > self.0.len() {
                    return Err(DagError::Protobuf);
                }
                let (bytes, rest) = self.0.split_at(len);
                self.0 = rest;
                Value::Bytes(bytes)
            }
            _ => return Err(DagError::Protobuf),
        };
        Ok(Some((key >> 3, value)))
    }
}

/// Decodes a UnixFS file node of our layout: its links, with each child's file size from the
/// node's `blocksizes`.
pub fn decode_node(node: &[u8]) -> Result<Vec<Link>, DagError> {
    let mut fields = Fields(node);
    let mut links = Vec::new();
    let mut data = None;
    while let Some((field, value)) = fields.next_field()? {
        match (field, value) {
            (2, Value::Bytes(encoded)) => {
                let (mut cid, mut tsize) = (None, None);
                let mut link = Fields(encoded);
                while let Some((field, value)) = link.next_field()? {
                    match (field, value) {
                        (1, Value::Bytes(hash)) => {
                            cid = Some(CapsuleCid::from_bytes(hash).map_err(|_| DagError::BadLink)?)
                        }
                        (2, Value::Bytes(_name)) => {}
                        (3, Value::Varint(size)) => tsize = Some(size),
                        _ => return Err(DagError::Protobuf),
                    }
                }
                links.push((cid.ok_or(DagError::BadLink)?, tsize.ok_or(DagError::Sizes)?));
            }
            (1, Value::Bytes(bytes)) if data.is_none() => data = Some(bytes),
            _ => return Err(DagError::Protobuf),
        }
    }
    let mut data = Fields(data.ok_or(DagError::NotAFile)?);
    let (mut kind, mut file_size, mut block_sizes) = (None, None, Vec::new());
    while let Some((field, value)) = data.next_field()? {
        match (field, value) {
            (1, Value::Varint(value)) => kind = Some(value),
            (3, Value::Varint(value)) => file_size = Some(value),
            (4, Value::Varint(value)) => block_sizes.push(value),
            // Inline data: not in a raw-leaves layout.
            _ => return Err(DagError::NotAFile),
        }
    }
    if kind != Some(2) || links.is_empty() || links.len() > MAX_LINKS {
        return Err(DagError::NotAFile);
    }
    let total = block_sizes
        .iter()
        .try_fold(0u64, |sum, size| sum.checked_add(*size))
        .ok_or(DagError::Sizes)?;
    if block_sizes.len() != links.len() || file_size != Some(total) {
        return Err(DagError::Sizes);
    }
    Ok(links
        .into_iter()
        .zip(block_sizes)
        .map(|((cid, tsize), file_size)| Link {
            cid,
            tsize,
            file_size,
        })
        .collect())
}

/// Builds the balanced tree over leaves as they come, in constant memory: it keeps only the
/// open node of each level (at most [`MAX_LINKS`] links each).
#[derive(Default)]
pub struct TreeBuilder {
    levels: Vec<Vec<Link>>,
}

impl TreeBuilder {
    /// Adds the next raw leaf; returns the parent nodes it completed, to store.
    pub fn push_leaf(&mut self, block: &[u8]) -> Vec<(CapsuleCid, Vec<u8>)> {
        self.push_leaf_with_cid(CapsuleCid::raw(block), block.len())
    }

    /// Adds the next raw leaf, whose CID is known (verified elsewhere).
    pub fn push_leaf_with_cid(
        &mut self,
        cid: CapsuleCid,
        len: usize,
    ) -> Vec<(CapsuleCid, Vec<u8>)> {
        let leaf = Link {
            cid,
            tsize: len as u64,
            file_size: len as u64,
        };
        let mut completed = Vec::new();
        self.push(0, leaf, &mut completed);
        completed
    }

    fn push(&mut self, level: usize, link: Link, completed: &mut Vec<(CapsuleCid, Vec<u8>)>) {
        if self.levels.len() == level {
            self.levels.push(Vec::new());
        }
        if self.levels[level].len() == MAX_LINKS {
            let full = core::mem::take(&mut self.levels[level]);
            let parent = Self::close(&full, completed);
            self.push(level + 1, parent, completed);
        }
        self.levels[level].push(link);
    }

    fn close(links: &[Link], completed: &mut Vec<(CapsuleCid, Vec<u8>)>) -> Link {
        let node = encode_node(links);
        let cid = node_cid(&node);
        let link = Link {
            cid,
            tsize: node.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>(),
            file_size: links.iter().map(|l| l.file_size).sum(),
        };
        completed.push((cid, node));
        link
    }

    /// Closes every open node; returns the root and the nodes still to store. An empty payload
    /// is one empty raw block.
    pub fn finish(mut self) -> (Link, Vec<(CapsuleCid, Vec<u8>)>) {
        let mut completed = Vec::new();
        if self.levels.is_empty() {
            let empty = Link {
                cid: CapsuleCid::raw(&[]),
                tsize: 0,
                file_size: 0,
            };
            return (empty, completed);
        }
        let mut level = 0;
        loop {
            let links = core::mem::take(&mut self.levels[level]);
            let top = level + 1 == self.levels.len();
            if top && links.len() == 1 {
                return (links[0], completed);
            }
            let parent = Self::close(&links, &mut completed);
            if top {
                return (parent, completed);
            }
            // The parent joins the next level's open node, closing it first if it is full.
            self.push(level + 1, parent, &mut completed);
            level += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_of(len: usize, block: usize) -> (Link, usize) {
        let data: Vec<u8> = (0..len).map(|i| (i % 256) as u8).collect();
        let mut builder = TreeBuilder::default();
        let mut nodes = 0;
        for chunk in data.chunks(block) {
            nodes += builder.push_leaf(chunk).len();
        }
        let (root, rest) = builder.finish();
        (root, nodes + rest.len())
    }

    #[test]
    fn one_block_is_its_own_cid() {
        let (root, nodes) = root_of(11, BLOCK_SIZE);
        assert_eq!(root.cid.codec, CidCodec::Raw);
        assert_eq!(nodes, 0);
    }

    #[test]
    fn nodes_decode_to_the_links_they_encode() {
        let links: Vec<Link> = (0..5u8)
            .map(|i| Link {
                cid: CapsuleCid::raw(&[i]),
                tsize: 100 + u64::from(i),
                file_size: 90 + u64::from(i),
            })
            .collect();
        assert_eq!(decode_node(&encode_node(&links)), Ok(links));
    }

    #[test]
    fn the_tree_has_a_second_level_past_174_leaves() {
        // 175 leaves of 1 byte: a root over a full node and a node of one.
        let (root, nodes) = root_of(175, 1);
        assert_eq!(root.cid.codec, CidCodec::DagPb);
        assert_eq!(root.file_size, 175);
        assert_eq!(nodes, 3);
        let (_, nodes) = root_of(174, 1);
        assert_eq!(nodes, 1);
    }

    #[test]
    fn malformed_nodes_are_typed_errors() {
        assert_eq!(decode_node(&[0xff]), Err(DagError::Protobuf));
        assert_eq!(decode_node(&[]), Err(DagError::NotAFile));
        let mut node = encode_node(&[Link {
            cid: CapsuleCid::raw(b"x"),
            tsize: 1,
            file_size: 1,
        }]);
        let last = node.len() - 1;
        node[last] = 2; // blocksizes no longer sum to filesize
        assert_eq!(decode_node(&node), Err(DagError::Sizes));
    }
}
