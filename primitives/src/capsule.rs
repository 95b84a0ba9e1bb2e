//! Content ids of capsules: IPFS-compatible CIDv1 with a SHA-256 multihash.
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// The IPLD codec a CID names. Capsules are `Raw` (a single block) or `DagPb` (a manifest over
/// payload blocks, as `ipfs add` builds for large files).
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
pub enum CidCodec {
    /// multicodec 0x55: the bytes themselves.
    Raw,
    /// multicodec 0x70: a UnixFS/dag-pb node.
    DagPb,
}

impl CidCodec {
    /// The multicodec code, which is also its one-byte varint.
    pub const fn code(self) -> u8 {
        match self {
            Self::Raw => 0x55,
            Self::DagPb => 0x70,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0x55 => Some(Self::Raw),
            0x70 => Some(Self::DagPb),
            _ => None,
        }
    }
}

/// The name of a capsule on chain: a CIDv1 whose multihash is SHA-256 (code 0x12, 32 bytes).
/// Stored as codec + digest (33 bytes), convertible to the 36 CID bytes and to the `b...`
/// base32 text IPFS prints.
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
pub struct CapsuleCid {
    /// What the block holds.
    pub codec: CidCodec,
    /// SHA-256 of the block.
    pub digest: [u8; 32],
}

/// Length of a CIDv1 with a SHA-256 multihash: version, codec, hash code, length, digest.
pub const CID_BYTES: usize = 36;
const CID_VERSION_1: u8 = 0x01;
const MULTIHASH_SHA2_256: u8 = 0x12;

/// Why bytes are not a CIDv1 with a SHA-256 multihash.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CidError {
    /// Not 36 bytes.
    Length,
    /// Not version 1.
    Version,
    /// A codec other than raw or dag-pb.
    Codec,
    /// A multihash other than 32-byte SHA-256.
    Multihash,
}

impl CapsuleCid {
    /// The CID of a raw block.
    pub fn raw(block: &[u8]) -> Self {
        Self {
            codec: CidCodec::Raw,
            digest: crate::hashing::sha256(block),
        }
    }

    /// The binary CID.
    pub fn to_bytes(&self) -> [u8; CID_BYTES] {
        let mut out = [0u8; CID_BYTES];
        out[..4].copy_from_slice(&[CID_VERSION_1, self.codec.code(), MULTIHASH_SHA2_256, 32]);
        out[4..].copy_from_slice(&self.digest);
        out
    }

    /// Parses a binary CID.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CidError> {
        let bytes: &[u8; CID_BYTES] = bytes.try_into().map_err(|_| CidError::Length)?;
        if bytes[0] != CID_VERSION_1 {
            return Err(CidError::Version);
        }
        let codec = CidCodec::from_code(bytes[1]).ok_or(CidError::Codec)?;
        if bytes[2] != MULTIHASH_SHA2_256 || bytes[3] != 32 {
            return Err(CidError::Multihash);
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&bytes[4..]);
        Ok(Self { codec, digest })
    }
}

/// The text form IPFS prints for CIDv1: multibase `b` + RFC 4648 base32, lowercase, no padding.
impl core::fmt::Display for CapsuleCid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        f.write_str("b")?;
        let (mut buffer, mut bits) = (0u16, 0u8);
        for byte in self.to_bytes() {
            buffer = (buffer << 8) | u16::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                let index = usize::from((buffer >> bits) & 0x1f);
                write!(f, "{}", char::from(ALPHABET[index]))?;
            }
        }
        if bits > 0 {
            let index = usize::from((buffer << (5 - bits)) & 0x1f);
            write!(f, "{}", char::from(ALPHABET[index]))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn matches_what_ipfs_prints_for_hello_world() {
        // `ipfs add --cid-version 1 --raw-leaves` of the 11 bytes `hello world`.
        let cid = CapsuleCid::raw(b"hello world");
        assert_eq!(
            cid.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
    }

    #[test]
    fn binary_form_round_trips_and_rejects_others() {
        let cid = CapsuleCid {
            codec: CidCodec::DagPb,
            digest: [9; 32],
        };
        let bytes = cid.to_bytes();
        assert_eq!(&bytes[..4], &[0x01, 0x70, 0x12, 0x20]);
        assert_eq!(CapsuleCid::from_bytes(&bytes), Ok(cid));
        assert_eq!(CapsuleCid::from_bytes(&bytes[..35]), Err(CidError::Length));
        let mut v0 = bytes;
        v0[0] = 0;
        assert_eq!(CapsuleCid::from_bytes(&v0), Err(CidError::Version));
        let mut cbor = bytes;
        cbor[1] = 0x71;
        assert_eq!(CapsuleCid::from_bytes(&cbor), Err(CidError::Codec));
        let mut blake = bytes;
        blake[2] = 0x1e;
        assert_eq!(CapsuleCid::from_bytes(&blake), Err(CidError::Multihash));
    }

    #[test]
    fn scale_encoding_is_codec_index_then_digest() {
        let cid = CapsuleCid {
            codec: CidCodec::DagPb,
            digest: [9; 32],
        };
        let mut expected = alloc::vec![1u8];
        expected.extend_from_slice(&[9; 32]);
        assert_eq!(cid.encode(), expected);
        assert_eq!(CapsuleCid::max_encoded_len(), 33);
    }
}
