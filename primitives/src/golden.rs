//! Golden measurements: the values governance approves and verifiers compare evidence against.
//!
//! Five kinds (ARCHITECTURE, "On chain"): the gateway OS image, the common HPC boot image (the
//! same for every gateway), the HPC's TPM PCR policy for a boot image, the root certificate of a
//! TPM EK certificate authority, and base container images. Each is named on chain by its
//! [`GoldenId`], the BLAKE2b-256 of a domain tag and its SCALE encoding.
use crate::{
    hashing::tagged_blake2_256,
    measurement::{ImageDigest, MeasurementDigest},
};
use bounded_collections::{BoundedVec, ConstU32};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// PCRs a TPM 2.0 bank has.
pub const MAX_PCRS: u32 = 24;

/// The hash bank a PCR policy reads.
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
pub enum PcrBank {
    Sha256,
    Sha384,
}

/// The PCR values an HPC booted from `image` must quote: one `(index, value)` per selected PCR,
/// in increasing index order. SHA-384 values are stored as their SHA-256, which is what quotes
/// are compared by.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct PcrPolicy {
    pub image: MeasurementDigest,
    pub bank: PcrBank,
    pub pcrs: BoundedVec<(u8, [u8; 32]), ConstU32<MAX_PCRS>>,
}

impl PcrPolicy {
    /// Whether the selection is well formed: indices below 24, strictly increasing, not empty.
    pub fn is_well_formed(&self) -> bool {
        !self.pcrs.is_empty()
            && self
                .pcrs
                .iter()
                .all(|(index, _)| u32::from(*index) < MAX_PCRS)
            && self.pcrs.windows(2).all(|pair| pair[0].0 < pair[1].0)
    }

    /// The selection as a TPM bitmask (bit `i` set for PCR `i`).
    pub fn selection_mask(&self) -> u32 {
        self.pcrs
            .iter()
            .fold(0, |mask, (index, _)| mask | (1u32 << (index % 32)))
    }
}

/// Which kind a golden measurement is.
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
pub enum GoldenKind {
    GatewayOs,
    HpcBootImage,
    HpcPcrPolicy,
    TpmEkCaRoot,
    BaseContainerImage,
}

/// One approved value.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub enum GoldenMeasurement {
    /// SHA-256 of the gateway's OS image.
    GatewayOs(MeasurementDigest),
    /// SHA-256 of the unified kernel image the HPC boots (kernel, initramfs, command line).
    HpcBootImage(MeasurementDigest),
    /// The PCRs an HPC booted from an approved image quotes.
    HpcPcrPolicy(PcrPolicy),
    /// SHA-256 of the DER root certificate of a TPM EK certificate authority.
    TpmEkCaRoot(MeasurementDigest),
    /// A base image tasks may build on, by Docker image id.
    BaseContainerImage(ImageDigest),
}

/// The name of a golden measurement on chain.
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
pub struct GoldenId(pub [u8; 32]);

/// The domain tag of [`GoldenMeasurement::id`].
pub const GOLDEN_ID_TAG: &[u8] = b"capsule/golden/v1";

impl GoldenMeasurement {
    pub fn kind(&self) -> GoldenKind {
        match self {
            Self::GatewayOs(_) => GoldenKind::GatewayOs,
            Self::HpcBootImage(_) => GoldenKind::HpcBootImage,
            Self::HpcPcrPolicy(_) => GoldenKind::HpcPcrPolicy,
            Self::TpmEkCaRoot(_) => GoldenKind::TpmEkCaRoot,
            Self::BaseContainerImage(_) => GoldenKind::BaseContainerImage,
        }
    }

    /// BLAKE2b-256 of [`GOLDEN_ID_TAG`] and the SCALE encoding.
    pub fn id(&self) -> GoldenId {
        GoldenId(tagged_blake2_256(GOLDEN_ID_TAG, &self.encode()))
    }

    /// Whether the value is well formed (a PCR policy's selection; the rest always are).
    pub fn is_well_formed(&self) -> bool {
        match self {
            Self::HpcPcrPolicy(policy) => policy.is_well_formed(),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(pcrs: &[(u8, u8)]) -> PcrPolicy {
        PcrPolicy {
            image: MeasurementDigest([1; 32]),
            bank: PcrBank::Sha256,
            pcrs: BoundedVec::truncate_from(pcrs.iter().map(|(i, v)| (*i, [*v; 32])).collect()),
        }
    }

    #[test]
    fn pcr_selections_must_be_increasing_and_in_range() {
        assert!(policy(&[(0, 1), (4, 2), (7, 3)]).is_well_formed());
        assert_eq!(
            policy(&[(0, 1), (4, 2), (7, 3)]).selection_mask(),
            0b1001_0001
        );
        assert!(!policy(&[]).is_well_formed());
        assert!(!policy(&[(4, 1), (4, 2)]).is_well_formed());
        assert!(!policy(&[(7, 1), (4, 2)]).is_well_formed());
        assert!(!policy(&[(24, 1)]).is_well_formed());
    }

    #[test]
    fn ids_are_tagged_hashes_of_the_encoding() {
        let os = GoldenMeasurement::GatewayOs(MeasurementDigest([9; 32]));
        let image = GoldenMeasurement::HpcBootImage(MeasurementDigest([9; 32]));
        assert_ne!(os.id(), image.id(), "the kind is part of the id");
        assert_eq!(
            os.id(),
            GoldenMeasurement::GatewayOs(MeasurementDigest([9; 32])).id()
        );
        assert_eq!(os.encode()[0], 0);
        assert_eq!(os.kind(), GoldenKind::GatewayOs);
        // Pinned (Python: blake2b(b"capsule/golden/v1" + bytes([0]) + bytes([9] * 32),
        // digest_size=32)): a daemon computing the id must get these bytes.
        assert_eq!(
            hex::encode(os.id().0),
            "b748f46d6389b76bba8451d7f6fd737ffdee79d1ed515f4379ea6e73198baae0"
        );
    }
}
