//! What an HPC's agent reports when its gateway challenges it, and what the gateway countersigns
//! for verifiers on other gateways (ARCHITECTURE, flows 2-4).
//!
//! A [`HpcReport`] answers one [`Nonce`]. It carries the HPC's session keys, the golden fields
//! (compared with the golden measurements and with what the HPC enrolled: boot image digest,
//! kernel command line, module set, PCI/USB id set, hardware fingerprint, partition table,
//! nonce-selected disk blocks), informational fields (processes, memory, uptime) and, where
//! the HPC has a TPM, a quote whose qualifying data is [`HpcReport::quoted_digest`]: the nonce,
//! the session keys and the golden fields, under a domain tag. The agent signs the report with
//! its Ed25519 session key ([`SignedReport`]); the gateway's root of trust countersigns the
//! signed report's digest ([`countersign_message`]); the two together are the
//! [`AttestationEvidence`] a verifier checks.
//!
//! Merkle trees (the fingerprint and the disk) follow RFC 9162's shape (split at the largest
//! power of two below the size; inclusion proofs as audit paths) with BLAKE2b-256, nodes
//! `H(0x01 ‖ left ‖ right)`, and leaves that are already tagged digests.
use alloc::vec::Vec;
use bounded_collections::{BoundedVec, ConstU32};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::{
    hashing::{blake2_256, tagged_blake2_256},
    keys::{FingerprintRoot, HpcSessionKeys},
    measurement::MeasurementDigest,
};

/// Domain tag of [`HpcReport::quoted_digest`] (the TPM quote's qualifying data).
pub const QUOTE_TAG: &[u8] = b"capsule/hpc-quote/v1";
/// Domain tag of [`report_signing_message`].
pub const REPORT_TAG: &[u8] = b"capsule/hpc-report/v1";
/// Domain tag of [`countersign_message`].
pub const COUNTERSIGN_TAG: &[u8] = b"capsule/hpc-countersign/v1";
/// Domain tag of a fingerprint leaf ([`fingerprint_leaf`]).
pub const FINGERPRINT_LEAF_TAG: &[u8] = b"capsule/fingerprint-leaf/v1";
/// Domain tag of a disk leaf ([`disk_leaf`]).
pub const DISK_LEAF_TAG: &[u8] = b"capsule/disk-leaf/v1";
/// Domain tag of the disk sample indices ([`sample_indices`]).
pub const DISK_SAMPLE_TAG: &[u8] = b"capsule/disk-sample/v1";

/// Longest kernel command line reported.
pub const MAX_CMDLINE: u32 = 4096;
/// Most loaded modules reported.
pub const MAX_MODULES: u32 = 1024;
/// Longest module or fingerprint source name.
pub const MAX_NAME: u32 = 64;
/// Most PCI and USB devices reported.
pub const MAX_DEVICES: u32 = 512;
/// Most fingerprint sources (present or missing).
pub const MAX_SOURCES: u32 = 64;
/// Most disk blocks sampled per challenge.
pub const MAX_DISK_SAMPLES: u32 = 16;
/// Deepest Merkle proof (a tree of 2^48 leaves).
pub const MAX_PROOF_DEPTH: u32 = 48;
/// Largest marshalled `TPMS_ATTEST` a quote carries.
pub const MAX_ATTEST: u32 = 1024;
/// Most PCRs a quote reports.
pub const MAX_QUOTED_PCRS: u32 = 24;

/// A short name (a module, a fingerprint source).
pub type Name = BoundedVec<u8, ConstU32<MAX_NAME>>;

/// A challenge: 32 bytes the gateway drew at random for one report.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct Nonce(pub [u8; 32]);

/// A device on the HPC's PCI or USB bus, by its ids.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum DeviceId {
    Pci {
        vendor: u16,
        device: u16,
        class: u32,
    },
    Usb {
        vendor: u16,
        product: u16,
    },
}

/// One present fingerprint source (a DMI field, the CPU, a disk serial, a MAC) as a salted leaf:
/// the value itself never leaves the HPC.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct FingerprintSource {
    pub name: Name,
    pub leaf: [u8; 32],
}

/// The hardware fingerprint: a leaf per present source, in increasing name order, and the
/// names of the sources that could not be read (tolerated and named, so a verifier sees which).
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    Default,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct Fingerprint {
    pub sources: BoundedVec<FingerprintSource, ConstU32<MAX_SOURCES>>,
    pub missing: BoundedVec<Name, ConstU32<MAX_SOURCES>>,
}

/// The leaf of source `name` with value `value`: `H(tag ‖ salt ‖ SCALE(name, value))`. The salt
/// is the HPC's own (its gateway keeps it), so a root on chain does not let anyone test guesses
/// of low-entropy serials.
pub fn fingerprint_leaf(salt: &[u8; 32], name: &[u8], value: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(32 + name.len() + value.len() + 8);
    data.extend_from_slice(salt);
    (name, value).encode_to(&mut data);
    tagged_blake2_256(FINGERPRINT_LEAF_TAG, &data)
}

impl Fingerprint {
    /// The Merkle root over the leaves in their (name) order; what the HPC enrolls.
    pub fn root(&self) -> FingerprintRoot {
        let leaves: Vec<[u8; 32]> = self.sources.iter().map(|s| s.leaf).collect();
        FingerprintRoot(merkle_root(&leaves))
    }

    /// Whether the sources are in strictly increasing name order (each named once).
    pub fn is_well_formed(&self) -> bool {
        self.sources.windows(2).all(|w| w[0].name < w[1].name)
    }
}

/// The leaf of disk block `index`: `H(tag ‖ index (u64 LE) ‖ block)`.
pub fn disk_leaf(index: u64, block: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(8 + block.len());
    data.extend_from_slice(&index.to_le_bytes());
    data.extend_from_slice(block);
    tagged_blake2_256(DISK_LEAF_TAG, &data)
}

/// The blocks a challenge selects: `count` indices below `leaves`, each
/// `u64_le(H(tag ‖ nonce ‖ i)[..8]) mod leaves` (repeats allowed; empty for an empty disk).
pub fn sample_indices(nonce: &Nonce, leaves: u64, count: u32) -> Vec<u64> {
    if leaves == 0 {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            let mut data = [0u8; 36];
            data[..32].copy_from_slice(&nonce.0);
            data[32..].copy_from_slice(&i.to_le_bytes());
            let hash = tagged_blake2_256(DISK_SAMPLE_TAG, &data);
            let mut first = [0u8; 8];
            first.copy_from_slice(&hash[..8]);
            u64::from_le_bytes(first) % leaves
        })
        .collect()
}

/// One sampled disk block: its leaf and the audit path to the disk's root.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct DiskSample {
    pub index: u64,
    pub leaf: [u8; 32],
    pub proof: BoundedVec<[u8; 32], ConstU32<MAX_PROOF_DEPTH>>,
}

/// The HPC's disk: the Merkle root over its blocks of `block_bytes` (golden: compared across
/// boots) and the blocks the challenge's nonce selected, read again for this report.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct DiskEvidence {
    pub root: [u8; 32],
    pub leaves: u64,
    pub block_bytes: u32,
    pub samples: BoundedVec<DiskSample, ConstU32<MAX_DISK_SAMPLES>>,
}

/// A TPM 2.0 quote: the marshalled `TPMS_ATTEST`, the attestation key's ECDSA P-256 signature
/// (`r ‖ s`), and the quoted PCR values (index, SHA-256 bank), so a verifier recomputes the
/// attested PCR digest.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct TpmQuote {
    pub attest: BoundedVec<u8, ConstU32<MAX_ATTEST>>,
    pub signature: [u8; 64],
    pub pcrs: BoundedVec<(u8, [u8; 32]), ConstU32<MAX_QUOTED_PCRS>>,
}

/// The fields compared across boots.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct GoldenFields {
    /// SHA-256 of the boot image the HPC runs (the unified kernel image).
    pub boot_image: MeasurementDigest,
    pub kernel_cmdline: BoundedVec<u8, ConstU32<MAX_CMDLINE>>,
    /// Loaded kernel modules, by name, in increasing order.
    pub modules: BoundedVec<Name, ConstU32<MAX_MODULES>>,
    /// PCI and USB devices, in increasing order.
    pub devices: BoundedVec<DeviceId, ConstU32<MAX_DEVICES>>,
    pub fingerprint: Fingerprint,
    /// SHA-256 of the disk's partition table (its first blocks); zero with no disk.
    pub partition_table: MeasurementDigest,
    pub disk: Option<DiskEvidence>,
}

/// Fields reported but not compared.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Default,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct InformationalFields {
    pub processes: u32,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub uptime_ms: u64,
}

/// An HPC's answer to one challenge.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct HpcReport {
    pub nonce: Nonce,
    pub session_keys: HpcSessionKeys,
    pub golden: GoldenFields,
    pub info: InformationalFields,
    /// Over [`HpcReport::quoted_digest`], where the HPC has a TPM.
    pub quote: Option<TpmQuote>,
}

impl HpcReport {
    /// What a TPM quote binds (its qualifying data, `H(tag, nonce, session keys, golden)`): the
    /// report without its informational fields and without the quote itself.
    pub fn quoted_digest(&self) -> [u8; 32] {
        quoted_digest(&self.nonce, &self.session_keys, &self.golden)
    }
}

/// [`HpcReport::quoted_digest`] of its parts (the agent computes it before it has a quote).
pub fn quoted_digest(
    nonce: &Nonce,
    session_keys: &HpcSessionKeys,
    golden: &GoldenFields,
) -> [u8; 32] {
    tagged_blake2_256(QUOTE_TAG, &(nonce, session_keys, golden).encode())
}

/// What the agent's Ed25519 session key signs: `tag ‖ H(SCALE(report))`.
pub fn report_signing_message(report: &HpcReport) -> [u8; 53] {
    let mut message = [0u8; 53];
    message[..21].copy_from_slice(REPORT_TAG);
    message[21..].copy_from_slice(&blake2_256(&report.encode()));
    message
}

/// A report with the session key's signature over [`report_signing_message`].
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct SignedReport {
    pub report: HpcReport,
    pub signature: [u8; 64],
}

impl SignedReport {
    /// The digest a gateway countersigns and an audit record names.
    pub fn digest(&self) -> [u8; 32] {
        tagged_blake2_256(REPORT_TAG, &self.encode())
    }
}

/// What a gateway's device key signs for an accepted report: `tag ‖ gateway account ‖ signed
/// report digest ‖ SCALE(attestation key)`. The account is inside, so one gateway's
/// countersignature cannot be passed off as another's; the attestation key is the one the
/// gateway activated against the HPC's enrolled EK for this boot (none without a TPM), so a
/// verifier checks the report's quote with the key the gateway vouches for.
pub fn countersign_message(
    gateway: &[u8; 32],
    signed_report_digest: &[u8; 32],
    attestation_key: &Option<[u8; 33]>,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(26 + 32 + 32 + 34);
    message.extend_from_slice(COUNTERSIGN_TAG);
    message.extend_from_slice(gateway);
    message.extend_from_slice(signed_report_digest);
    attestation_key.encode_to(&mut message);
    message
}

/// The evidence a verifier on another gateway checks: the signed report and its gateway's
/// countersignature by its registered device key.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct AttestationEvidence {
    pub gateway: [u8; 32],
    pub signed: SignedReport,
    /// The boot's attestation key the gateway activated against the enrolled EK (TPM HPCs).
    pub attestation_key: Option<[u8; 33]>,
    pub countersignature: crate::keys::DeviceSignature,
}

/// Why a report was not accepted: what the gateway records for an audit round and a verifier
/// concludes.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum AttestationFailure {
    /// The report answers another challenge (or an old one again).
    WrongNonce,
    /// The report's signature is not by the session key attested at the boot's first report.
    BadReportSignature,
    /// The session keys differ from the ones this boot attested first (or from the channel's).
    SessionKeysChanged,
    BootImage,
    KernelCmdline,
    ModuleSet,
    DeviceSet,
    /// The fingerprint's root differs from the enrolled one.
    Fingerprint,
    PartitionTable,
    /// The disk's root differs, or a sampled block is missing, wrong or unproven.
    DiskBlocks,
    /// A TPM quote is missing where one is required, or fails its checks.
    TpmQuote,
    /// The countersignature is not the gateway's.
    BadCountersignature,
    /// A malformed report (unsorted sets, duplicates).
    Malformed,
    /// The TPM is not the enrolled one: its EK differs, its certificate does not chain to a
    /// pinned CA, or it could not recover a credential for its attestation key.
    UnknownTpm,
}

/// A Merkle tree with every level kept, so an audit path is read, not recomputed. Built
/// bottom-up, pairing neighbours and carrying a level's odd last node up unchanged: the same
/// tree as RFC 9162's recursive split at the largest power of two below the size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the leaves; the last level holds the root alone (none when empty).
    levels: Vec<Vec<[u8; 32]>>,
}

impl MerkleTree {
    pub fn new(leaves: Vec<[u8; 32]>) -> Self {
        let mut levels = alloc::vec![leaves];
        while let Some(level) = levels.last().filter(|l| l.len() > 1) {
            let up = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node(left, right),
                    [carried] => *carried,
                    _ => unreachable!("chunks(2) yields one or two"),
                })
                .collect();
            levels.push(up);
        }
        Self { levels }
    }

    /// The root (the empty tree's is `H()`).
    pub fn root(&self) -> [u8; 32] {
        match self.levels.last().and_then(|l| l.first()) {
            Some(root) => *root,
            None => blake2_256(&[]),
        }
    }

    /// The leaves.
    pub fn leaves(&self) -> &[[u8; 32]] {
        &self.levels[0]
    }

    /// The audit path of leaf `index`, bottom-up (empty for a tree of one leaf or an index out
    /// of range).
    pub fn proof(&self, index: usize) -> Vec<[u8; 32]> {
        if index >= self.leaves().len() {
            return Vec::new();
        }
        let mut path = Vec::new();
        let mut at = index;
        for level in &self.levels[..self.levels.len() - 1] {
            // A carried node has no sibling at its level.
            if let Some(sibling) = level.get(at ^ 1) {
                path.push(*sibling);
            }
            at /= 2;
        }
        path
    }
}

/// The Merkle root of `leaves` (RFC 9162 shape; the empty tree's root is `H()`).
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    MerkleTree::new(leaves.to_vec()).root()
}

/// Whether `proof` shows `leaf` at `index` of a tree of `size` leaves with root `root`
/// (RFC 9162, 2.1.3.2).
pub fn verify_merkle_proof(
    root: &[u8; 32],
    size: u64,
    index: u64,
    leaf: &[u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut data = [0u8; 65];
    data[0] = 1;
    data[1..33].copy_from_slice(left);
    data[33..].copy_from_slice(right);
    blake2_256(&data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n as u64)
            .map(|i| disk_leaf(i, &[i as u8; 16]))
            .collect()
    }

    #[test]
    fn every_leaf_of_every_small_tree_proves_and_nothing_else_does() {
        for n in 1..=17usize {
            let tree = leaves(n);
            let root = merkle_root(&tree);
            for i in 0..n {
                let proof = MerkleTree::new(tree.clone()).proof(i);
                assert!(
                    verify_merkle_proof(&root, n as u64, i as u64, &tree[i], &proof),
                    "n {n} i {i}"
                );
                let other = (i + 1) % n;
                if other != i {
                    assert!(!verify_merkle_proof(
                        &root,
                        n as u64,
                        other as u64,
                        &tree[i],
                        &proof
                    ));
                }
                assert!(!verify_merkle_proof(
                    &root,
                    n as u64,
                    i as u64,
                    &disk_leaf(99, b"x"),
                    &proof
                ));
                assert!(!verify_merkle_proof(
                    &root, n as u64, n as u64, &tree[i], &proof
                ));
            }
        }
    }

    #[test]
    fn samples_are_below_the_size_and_follow_the_nonce() {
        let a = sample_indices(&Nonce([1; 32]), 1000, 8);
        assert_eq!(a.len(), 8);
        assert!(a.iter().all(|&i| i < 1000));
        assert_ne!(a, sample_indices(&Nonce([2; 32]), 1000, 8));
        assert_eq!(a, sample_indices(&Nonce([1; 32]), 1000, 8));
        assert!(sample_indices(&Nonce([1; 32]), 0, 8).is_empty());
    }

    /// Golden vectors, computed independently with Python's hashlib (BLAKE2b, 32-byte digest).
    #[test]
    fn digests_are_pinned() {
        let salt = [0x5a; 32];
        let leaf = fingerprint_leaf(&salt, b"dmi/product_serial", b"HPC-SN-0001");
        assert_eq!(
            hex::encode(leaf),
            "7cc62beefcee4c0b159801668dc4d6f75a9f37e78e898074e76cfcff8a66b5cf"
        );
        let root = merkle_root(&leaves(5));
        assert_eq!(
            hex::encode(root),
            "011665f49f4e3a7db6fc5a0da3fb463f3680dcd5378419a2a8f407962d5edbef"
        );
        assert_eq!(
            sample_indices(&Nonce([7; 32]), 1_000_003, 3),
            [388923, 892444, 239325]
        );
        let golden = GoldenFields {
            boot_image: MeasurementDigest([0xb0; 32]),
            kernel_cmdline: BoundedVec::truncate_from(b"console=ttyS0".to_vec()),
            modules: BoundedVec::default(),
            devices: BoundedVec::default(),
            fingerprint: Fingerprint::default(),
            partition_table: MeasurementDigest([0xd0; 32]),
            disk: None,
        };
        let keys = HpcSessionKeys {
            x25519: [0x11; 32],
            ed25519: [0x22; 32],
        };
        assert_eq!(
            hex::encode(quoted_digest(&Nonce([0x33; 32]), &keys, &golden)),
            "a33a644839a2de4f5ba05900bc6d5bc49c98adf51e3b1a93f3ed2a0576638a48"
        );
        assert_eq!(
            hex::encode(countersign_message(&[0x44; 32], &[0x55; 32], &Some([0x02; 33]))),
            "63617073756c652f6870632d636f756e7465727369676e2f76314444444444444444444444444444444444444444444444444444444444444444555555555555555555555555555555555555555555555555555555555555555501020202020202020202020202020202020202020202020202020202020202020202"
        );
        assert_eq!(
            countersign_message(&[0x44; 32], &[0x55; 32], &None).len(),
            26 + 64 + 1
        );
    }
}
