//! What an ECDSA (secp256k1) account signs, so that a hardware module which only signs 32-byte
//! digests can sign extrinsics.
//!
//! Substrate signs the SCALE payload of an extrinsic, replaced by its BLAKE2b-256 when longer
//! than [`MAX_UNHASHED_PAYLOAD_LEN`] bytes; `MultiSignature::Ecdsa` then verifies by hashing
//! that message with BLAKE2b-256 and recovering the key from a 65-byte `r ‖ s ‖ v` signature.
//! The account id of an ECDSA key is the BLAKE2b-256 of its 33-byte compressed public key.
use crate::hashing::blake2_256;

/// Longest payload signed as is; longer ones are hashed first.
pub const MAX_UNHASHED_PAYLOAD_LEN: usize = 256;

/// The 32-byte digest a hardware module signs (prehashed ECDSA) for an extrinsic `payload`.
/// The signature it returns is `r ‖ s ‖ v` with the recovery id `v` in `0..=3`.
pub fn ecdsa_signing_digest(payload: &[u8]) -> [u8; 32] {
    if payload.len() > MAX_UNHASHED_PAYLOAD_LEN {
        blake2_256(&blake2_256(payload))
    } else {
        blake2_256(payload)
    }
}

/// The `AccountId32` of an ECDSA key, from its compressed SEC1 public key.
pub fn ecdsa_account_id(compressed_public_key: &[u8; 33]) -> [u8; 32] {
    blake2_256(compressed_public_key)
}
