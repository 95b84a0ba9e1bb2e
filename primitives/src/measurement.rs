//! Measurements: what a verifier compares against a golden value.
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// SHA-256 of a measured object: a boot image, a kernel command line, a module set, a PCI/USB
/// id set, a partition table, a fingerprint root. SHA-256 because that is what UEFI measures
/// into TPM PCRs, so a quote and a report speak of the same bytes.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct MeasurementDigest(pub [u8; 32]);

impl core::fmt::Debug for MeasurementDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MeasurementDigest(")?;
        write_hex(f, &self.0)?;
        write!(f, ")")
    }
}

/// A container image, named by its Docker image id: the SHA-256 of the image's config JSON,
/// written `sha256:<64 hex digits>` by `docker image inspect --format '{{.Id}}'`. Pinning the
/// config pins every layer, since the config lists the layers' diff ids.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct ImageDigest(pub [u8; 32]);

/// Why a string is not a Docker image id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ImageDigestParseError {
    /// The string does not start with `sha256:`.
    MissingAlgorithm,
    /// The part after `sha256:` is not 64 hex digits.
    BadHex,
}

impl core::fmt::Display for ImageDigestParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::MissingAlgorithm => write!(f, "an image id starts with `sha256:`"),
            Self::BadHex => write!(f, "an image id has 64 lowercase hex digits after `sha256:`"),
        }
    }
}

impl ImageDigest {
    /// The prefix Docker writes before the hex digest.
    pub const PREFIX: &'static str = "sha256:";

    /// The digest of an image whose config JSON is `config`.
    pub fn of_config(config: &[u8]) -> Self {
        Self(crate::hashing::sha256(config))
    }

    /// Parses `sha256:<64 lowercase hex digits>`, as Docker prints an image id.
    pub fn parse(id: &str) -> Result<Self, ImageDigestParseError> {
        let hex = id
            .strip_prefix(Self::PREFIX)
            .ok_or(ImageDigestParseError::MissingAlgorithm)?;
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(ImageDigestParseError::BadHex);
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self(out))
    }
}

fn nibble(c: u8) -> Result<u8, ImageDigestParseError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(ImageDigestParseError::BadHex),
    }
}

fn write_hex(f: &mut core::fmt::Formatter<'_>, bytes: &[u8]) -> core::fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// Formats as Docker does: `sha256:<hex>`.
impl core::fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(Self::PREFIX)?;
        write_hex(f, &self.0)
    }
}

impl core::fmt::Debug for ImageDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ImageDigest({self})")
    }
}

impl core::str::FromStr for ImageDigest {
    type Err = ImageDigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    // `docker image inspect --format '{{.Id}}'` of an image whose config is `{}`: Docker's id is
    // the SHA-256 of the config bytes exactly as stored.
    const EMPTY_CONFIG_ID: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn image_digest_is_sha256_of_the_config() {
        let digest = ImageDigest::of_config(b"{}");
        assert_eq!(digest.to_string(), EMPTY_CONFIG_ID);
        assert_eq!(ImageDigest::parse(EMPTY_CONFIG_ID), Ok(digest));
    }

    #[test]
    fn image_digest_rejects_what_docker_would_not_print() {
        assert_eq!(
            ImageDigest::parse("44136fa3"),
            Err(ImageDigestParseError::MissingAlgorithm)
        );
        assert_eq!(
            ImageDigest::parse("sha256:4413"),
            Err(ImageDigestParseError::BadHex)
        );
        let upper = EMPTY_CONFIG_ID.to_uppercase().replace("SHA256", "sha256");
        assert_eq!(
            ImageDigest::parse(&upper),
            Err(ImageDigestParseError::BadHex)
        );
        let not_hex = EMPTY_CONFIG_ID.replacen("4413", "g413", 1);
        assert_eq!(
            ImageDigest::parse(&not_hex),
            Err(ImageDigestParseError::BadHex)
        );
    }

    #[test]
    fn digests_encode_as_their_32_bytes() {
        let digest = ImageDigest::parse(EMPTY_CONFIG_ID).unwrap();
        assert_eq!(digest.encode(), digest.0.to_vec());
        assert_eq!(MeasurementDigest([7; 32]).encode(), [7u8; 32].to_vec());
        assert_eq!(ImageDigest::max_encoded_len(), 32);
    }
}
