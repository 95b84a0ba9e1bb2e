//! The messages between a gateway and its HPC's agent, over their Noise channel (ARCHITECTURE,
//! flows 2-3), SCALE-encoded, with the sizes each side accepts. The task messages join them
//! with the PXE issue.
use bounded_collections::{BoundedVec, ConstU32};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::report::{Nonce, SignedReport, MAX_DISK_SAMPLES};

/// Largest attestation message either side accepts (a report is far smaller).
pub const MAX_ATTESTATION_MESSAGE: u32 = 1 << 20;
/// Longest reason an agent gives for refusing a challenge.
pub const MAX_REASON: u32 = 256;

/// From the gateway.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub enum GatewayMessage {
    /// Report now, over this nonce, with this many disk blocks sampled (at most
    /// [`MAX_DISK_SAMPLES`]).
    Challenge { nonce: Nonce, disk_samples: u32 },
}

/// From the agent.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub enum AgentMessage {
    /// The answer to a challenge.
    Report(SignedReport),
    /// The agent could not measure (a source it needs failed): why, for the gateway's log.
    CannotReport(BoundedVec<u8, ConstU32<MAX_REASON>>),
}

impl GatewayMessage {
    /// A challenge, its sample count capped at [`MAX_DISK_SAMPLES`].
    pub fn challenge(nonce: Nonce, disk_samples: u32) -> Self {
        Self::Challenge {
            nonce,
            disk_samples: disk_samples.min(MAX_DISK_SAMPLES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_messages_fit_the_limit_and_encodings_are_pinned() {
        assert!(AgentMessage::max_encoded_len() <= MAX_ATTESTATION_MESSAGE as usize);
        let challenge = GatewayMessage::challenge(Nonce([3; 32]), 99);
        let bytes = challenge.encode();
        assert_eq!(bytes[0], 0, "variant");
        assert_eq!(&bytes[1..33], &[3; 32]);
        assert_eq!(bytes[33..], 16u32.to_le_bytes(), "capped");
    }
}
