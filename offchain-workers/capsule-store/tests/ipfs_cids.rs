//! Our payload CIDs equal the ones the IPFS reference importer computes for the same bytes
//! (`tests/js`, ipfs-unixfs-importer with kubo's `ipfs add --cid-version=1 --raw-leaves
//! --chunker=size-N` options; `scripts/setup.sh` installs it). Then the embedded store: a real
//! sealed capsule goes in and comes back byte for byte, and damaged blocks are refused.
use std::{path::Path, process::Command};

use capsule_primitives::capsule::CapsuleCid;
use capsule_store::{
    get_payload, parse_cid, put_header_extending, put_payload,
    unixfs::{encode_node, node_cid, DagError, Link, TreeBuilder, BLOCK_SIZE, MAX_LINKS},
    BlockStore, FsStore, StoreError,
};

fn ipfs_cid(dir: &Path, data: &[u8], chunk: usize) -> String {
    let file = dir.join("data");
    std::fs::write(&file, data).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/unixfs-cid.mjs");
    let output = Command::new("node")
        .args([script, file.to_str().unwrap(), &chunk.to_string()])
        .output()
        .expect("node runs (scripts/setup.sh installs it and the importer)");
    assert!(
        output.status.success(),
        "the IPFS importer failed (run scripts/setup.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn our_cid(data: &[u8], chunk: usize) -> CapsuleCid {
    let mut builder = TreeBuilder::default();
    for block in data.chunks(chunk) {
        builder.push_leaf(block);
    }
    builder.finish().0.cid
}

#[test]
fn payload_cids_match_the_ipfs_importer() {
    let dir = tempfile::tempdir().unwrap();
    // One block, exactly one block, one byte more, several blocks.
    for len in [11, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE + 12_345] {
        let bytes = data(len, len as u64);
        let store = FsStore::open(dir.path().join(format!("store-{len}"))).unwrap();
        let (root, stored) = put_payload(&store, &bytes[..], &mut |_| {}).unwrap();
        assert_eq!(stored, len as u64);
        assert_eq!(
            root.to_string(),
            ipfs_cid(dir.path(), &bytes, BLOCK_SIZE),
            "{len} bytes"
        );
    }
    // Deeper trees with small chunks (the layout does not depend on the chunk size): 174
    // leaves fill one node, 175 need a second level, 174 × 174 + 1 a third.
    for leaves in [174, 175, 349, 174 * 174 + 1] {
        let bytes = data(leaves * 16 - 3, leaves as u64);
        assert_eq!(
            our_cid(&bytes, 16).to_string(),
            ipfs_cid(dir.path(), &bytes, 16),
            "{leaves} leaves"
        );
    }
}

#[test]
fn a_sealed_capsule_goes_in_and_comes_back_unchanged() {
    use capsule_format::{seal, split, Recipient, SecretKey};
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let key = SecretKey::generate();
    let mut capsule = Vec::new();
    let plaintext = data(2 * BLOCK_SIZE + 77, 5);
    seal(
        &plaintext[..],
        &mut capsule,
        &[Recipient::plain(key.public())],
        &mut |_| {},
    )
    .unwrap();
    let (header, payload) = split(&capsule).unwrap();
    let (root, _) = put_payload(&store, payload, &mut |_| {}).unwrap();
    store.put_header(&root, header).unwrap();

    let mut back = store.get_header(&root).unwrap();
    get_payload(&store, &root, &mut back, u64::MAX, &mut |_| {}).unwrap();
    assert_eq!(back, capsule);
    assert_eq!(parse_cid(&root.to_string()).unwrap(), root);

    // A damaged block on disk is refused on read.
    let victim = CapsuleCid::raw(&payload[..BLOCK_SIZE]);
    let path = dir.path().join("blocks").join(victim.to_string());
    let mut block = std::fs::read(&path).unwrap();
    block[100] ^= 1;
    std::fs::write(&path, block).unwrap();
    assert!(matches!(
        get_payload(&store, &root, &mut Vec::new(), u64::MAX, &mut |_| {}),
        Err(StoreError::Corrupt(cid)) if cid == victim
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        get_payload(&store, &root, &mut Vec::new(), u64::MAX, &mut |_| {}),
        Err(StoreError::Missing(cid)) if cid == victim
    ));
    // A block that does not hash to its CID is never stored.
    assert!(matches!(
        store.put(&victim, b"other bytes"),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        parse_cid("bafy-not-a-cid"),
        Err(StoreError::BadCid(_))
    ));
}

/// Stores a node over `links` and returns its link.
fn node(store: &FsStore, links: &[Link]) -> Link {
    let bytes = encode_node(links);
    let cid = node_cid(&bytes);
    store.put(&cid, &bytes).unwrap();
    Link {
        cid,
        tsize: bytes.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>(),
        file_size: links.iter().map(|l| l.file_size).sum(),
    }
}

fn leaf(store: &FsStore, bytes: &[u8]) -> Link {
    let cid = CapsuleCid::raw(bytes);
    store.put(&cid, bytes).unwrap();
    Link {
        cid,
        tsize: bytes.len() as u64,
        file_size: bytes.len() as u64,
    }
}

#[test]
fn trees_built_to_blow_up_or_mislead_are_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let get = |root: &Link, max: u64| {
        let mut out = Vec::new();
        let result = get_payload(&store, &root.cid, &mut out, max, &mut |_| {});
        (result, out.len())
    };

    // Five levels of 174 links to one 1 MiB block: 174^5 MiB declared in a few kilobytes.
    let mut top = leaf(&store, &vec![1u8; BLOCK_SIZE]);
    for _ in 0..5 {
        top = node(&store, &vec![top; MAX_LINKS]);
    }
    let (result, written) = get(&top, 1 << 30);
    assert!(
        matches!(result, Err(StoreError::TooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(written, 0, "refused before writing anything");

    // Links to an empty block: endless work for no bytes.
    let empty = leaf(&store, b"");
    let mut top = node(&store, &vec![empty; MAX_LINKS]);
    for _ in 0..5 {
        top = node(&store, &vec![top; MAX_LINKS]);
    }
    let (result, _) = get(&top, u64::MAX);
    assert!(
        matches!(
            result,
            Err(StoreError::Dag {
                error: DagError::NotCanonical,
                ..
            })
        ),
        "{result:?}"
    );

    // A short leaf before a full one: not the layout `ipfs add` builds.
    let short = leaf(&store, b"short");
    let full = leaf(&store, &vec![2u8; BLOCK_SIZE]);
    let odd = node(&store, &[short, full]);
    let (result, _) = get(&odd, u64::MAX);
    assert!(
        matches!(
            result,
            Err(StoreError::Dag {
                error: DagError::NotCanonical,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn an_older_header_cannot_replace_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let root = CapsuleCid::raw(b"payload");
    let old = b"age-encryption.org/v1\n-> X25519 a\nb\n--- mac1\n";
    let new = b"age-encryption.org/v1\n-> X25519 a\nb\n-> X25519 c\nd\n--- mac2\n";
    put_header_extending(&store, &root, old, false).unwrap();
    put_header_extending(&store, &root, new, false).unwrap();
    assert!(matches!(
        put_header_extending(&store, &root, old, false),
        Err(StoreError::HeaderConflict(_))
    ));
    assert_eq!(store.get_header(&root).unwrap(), new);
    put_header_extending(&store, &root, old, true).unwrap();
    assert_eq!(store.get_header(&root).unwrap(), old);
}
