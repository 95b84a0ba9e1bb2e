//! Hash functions. Our own digests use BLAKE2b-256 (what Substrate calls `blake2_256`), always
//! over a domain tag followed by the SCALE encoding, so a digest of one kind never equals a
//! digest of another. SHA-256 appears only where an outside format fixes it (Docker image ids,
//! TPM PCRs, CIDs).
use blake2::{digest::consts::U32, Blake2b, Digest};

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// BLAKE2b with a 32-byte output, byte-for-byte `sp_crypto_hashing::blake2_256`.
pub fn blake2_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// BLAKE2b-256 of `tag ‖ data`.
pub fn tagged_blake2_256(tag: &[u8], data: &[u8]) -> [u8; 32] {
    let mut hasher = Blake2b::<U32>::new();
    hasher.update(tag);
    hasher.update(data);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake2_256_is_substrates() {
        assert_eq!(
            blake2_256(b"capsule"),
            sp_crypto_hashing::blake2_256(b"capsule")
        );
        assert_eq!(blake2_256(&[]), sp_crypto_hashing::blake2_256(&[]));
    }

    #[test]
    fn a_tag_separates_domains() {
        assert_eq!(tagged_blake2_256(b"a", b"bc"), blake2_256(b"abc"));
        assert_ne!(
            tagged_blake2_256(b"task", b"x"),
            tagged_blake2_256(b"round", b"x")
        );
    }
}
