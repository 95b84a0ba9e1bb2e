//! What a task may do while it runs, and the digest that pins it on chain.
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::{hashing::tagged_blake2_256, BoundedVec, ConstU32};

/// Most egress rules one task may list.
pub const MAX_EGRESS_RULES: u32 = 16;

/// Domain tag of [`PolicyDigest`].
pub const POLICY_DIGEST_TAG: &[u8] = b"capsule/task-policy/v1";

/// Layer-4 protocol of an egress rule.
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
pub enum TransportProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// An IP address a task may reach. Names are not allowed: resolving one would itself be egress.
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
pub enum IpAddress {
    /// IPv4, network byte order.
    V4([u8; 4]),
    /// IPv6, network byte order.
    V6([u8; 16]),
}

/// One destination a task may open connections to. Everything not listed is dropped and logged.
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
pub struct EgressRule {
    /// Destination address.
    pub address: IpAddress,
    /// Destination port.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: TransportProtocol,
}

/// Resource ceilings of a task's container.
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
pub struct ResourceLimits {
    /// Memory, in bytes, swap included.
    pub memory_bytes: u64,
    /// CPU, in thousandths of a core.
    pub cpu_millis: u32,
    /// Processes and threads.
    pub pids: u32,
    /// Size of the writable tmpfs; the root filesystem is read-only.
    pub tmpfs_bytes: u64,
    /// Total size of the outputs the task may return.
    pub output_bytes: u64,
}

/// The execution policy of a task: whom it may talk to, what it may use, and how long it may
/// run (the stand-in for gas). An empty egress list means no network at all.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct TaskPolicy {
    /// Destinations the task may reach; empty for none.
    pub egress: BoundedVec<EgressRule, ConstU32<MAX_EGRESS_RULES>>,
    /// Resource ceilings.
    pub limits: ResourceLimits,
    /// Wall-clock limit, in seconds, after which the task is killed.
    pub timeout_secs: u32,
}

/// BLAKE2b-256 over [`POLICY_DIGEST_TAG`] and the SCALE encoding of a [`TaskPolicy`]. The chain
/// stores only this; the executor recomputes it from the policy it is handed.
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
pub struct PolicyDigest(pub [u8; 32]);

impl TaskPolicy {
    /// The digest that pins this policy on chain.
    pub fn digest(&self) -> PolicyDigest {
        PolicyDigest(tagged_blake2_256(POLICY_DIGEST_TAG, &self.encode()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaskPolicy {
        TaskPolicy {
            egress: BoundedVec::truncate_from(alloc::vec![EgressRule {
                address: IpAddress::V4([127, 0, 0, 1]),
                port: 443,
                protocol: TransportProtocol::Tcp,
            }]),
            limits: ResourceLimits {
                memory_bytes: 256 << 20,
                cpu_millis: 1000,
                pids: 64,
                tmpfs_bytes: 16 << 20,
                output_bytes: 1 << 20,
            },
            timeout_secs: 60,
        }
    }

    #[test]
    fn encoding_is_pinned() {
        let expected = concat!(
            "04", // one egress rule
            "00",
            "7f000001",         // V4 127.0.0.1
            "bb01",             // port 443
            "00",               // TCP
            "0000001000000000", // 256 MiB
            "e8030000",         // 1000 millicores
            "40000000",         // 64 pids
            "0000000100000000", // 16 MiB tmpfs
            "0000100000000000", // 1 MiB output
            "3c000000",         // 60 s
        );
        assert_eq!(hex::encode(sample().encode()), expected);
    }

    #[test]
    fn digest_is_tagged_blake2_of_the_encoding() {
        let policy = sample();
        let mut preimage = POLICY_DIGEST_TAG.to_vec();
        preimage.extend(policy.encode());
        assert_eq!(policy.digest().0, sp_crypto_hashing::blake2_256(&preimage));
    }

    #[test]
    fn any_change_changes_the_digest() {
        let base = sample();
        let mut longer = base.clone();
        longer.timeout_secs += 1;
        let mut offline = base.clone();
        offline.egress = BoundedVec::new();
        assert_ne!(base.digest(), longer.digest());
        assert_ne!(base.digest(), offline.digest());
    }

    #[test]
    fn too_many_egress_rules_do_not_decode() {
        let rule = sample().egress[0];
        let rules = alloc::vec![rule; MAX_EGRESS_RULES as usize + 1];
        let mut bytes = rules.encode();
        bytes.extend(sample().limits.encode());
        bytes.extend(60u32.encode());
        assert!(TaskPolicy::decode(&mut &bytes[..]).is_err());
    }
}
