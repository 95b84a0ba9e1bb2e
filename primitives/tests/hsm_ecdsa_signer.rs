//! Golden vectors: an HSM-style signer (prehashed secp256k1, `r ‖ s ‖ v`) produces extrinsic
//! signatures the runtime's `MultiSignature::Ecdsa` accepts. k256 stands in for the module: it
//! signs only the digest `ecdsa_signing_digest` gives it, as the Zymbit API does.
use capsule_primitives::signing::{
    ecdsa_account_id, ecdsa_signing_digest, MAX_UNHASHED_PAYLOAD_LEN,
};
use k256::ecdsa::SigningKey;
use sp_runtime::{
    traits::{IdentifyAccount, Verify},
    AccountId32, MultiSignature,
};

const SECRET: [u8; 32] = [0x42; 32];

/// What the hardware module does: sign a 32-byte digest, return `r ‖ s ‖ v`.
fn hsm_sign(digest: &[u8; 32]) -> [u8; 65] {
    let key = SigningKey::from_bytes(&SECRET.into()).unwrap();
    let (signature, recovery_id) = key.sign_prehash_recoverable(digest).unwrap();
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&signature.to_bytes());
    out[64] = recovery_id.to_byte();
    out
}

/// The module's compressed (33-byte) public key, as it exports it.
fn hsm_public_key() -> [u8; 33] {
    let key = SigningKey::from_bytes(&SECRET.into()).unwrap();
    key.verifying_key()
        .to_encoded_point(true)
        .as_bytes()
        .try_into()
        .unwrap()
}

fn hsm_account() -> AccountId32 {
    let compressed = hsm_public_key();
    AccountId32::new(ecdsa_account_id(&compressed))
}

/// What the runtime checks: the message is the payload, or its hash when long.
fn runtime_accepts(payload: &[u8], signature: [u8; 65], signer: &AccountId32) -> bool {
    let message = if payload.len() > MAX_UNHASHED_PAYLOAD_LEN {
        sp_crypto_hashing::blake2_256(payload).to_vec()
    } else {
        payload.to_vec()
    };
    MultiSignature::Ecdsa(sp_core::ecdsa::Signature::from_raw(signature))
        .verify(&message[..], signer)
}

#[test]
fn account_id_is_what_sp_core_derives() {
    let compressed = hsm_public_key();
    let public = sp_core::ecdsa::Public::from_raw(compressed);
    let via_sp: AccountId32 = sp_runtime::MultiSigner::Ecdsa(public).into_account();
    assert_eq!(via_sp, hsm_account());
}

#[test]
fn short_payload_signature_is_accepted() {
    let payload = b"capsule: a short extrinsic payload";
    let signature = hsm_sign(&ecdsa_signing_digest(payload));
    assert!(runtime_accepts(payload, signature, &hsm_account()));
    assert_eq!(hex::encode(signature), GOLDEN_SHORT);
}

#[test]
fn long_payload_is_prehashed_and_accepted() {
    let payload = vec![0xab; MAX_UNHASHED_PAYLOAD_LEN + 1];
    let signature = hsm_sign(&ecdsa_signing_digest(&payload));
    assert!(runtime_accepts(&payload, signature, &hsm_account()));
    assert_eq!(hex::encode(signature), GOLDEN_LONG);
    // Exactly 256 bytes is still signed as is.
    let edge = vec![0xab; MAX_UNHASHED_PAYLOAD_LEN];
    assert!(runtime_accepts(
        &edge,
        hsm_sign(&ecdsa_signing_digest(&edge)),
        &hsm_account()
    ));
}

#[test]
fn a_signature_over_other_bytes_or_by_another_key_is_refused() {
    let payload = b"transfer 1 CAP";
    let signature = hsm_sign(&ecdsa_signing_digest(payload));
    assert!(!runtime_accepts(
        b"transfer 9 CAP",
        signature,
        &hsm_account()
    ));
    assert!(!runtime_accepts(
        payload,
        signature,
        &AccountId32::new([1; 32])
    ));
    // Forgetting the prehash on a long payload is caught too.
    let long = vec![1u8; 300];
    let wrong = hsm_sign(&sp_crypto_hashing::blake2_256(&long));
    assert!(!runtime_accepts(&long, wrong, &hsm_account()));
}

const GOLDEN_SHORT: &str = concat!(
    "8f64bbe23df93146d74eb42b3d1f34f3158880596413bbcdf0f59a9927019d47",
    "31a8883148d1a01b2c402d22e467c5b4c71d501dea29f3887abadc0985ab264f",
    "00",
);
const GOLDEN_LONG: &str = concat!(
    "6260734ba685e4f2f6ce516effd53a2368bd169903063d3d6d21f431fce50627",
    "373ed80bc7007ef742c49320915803c7234ecbdf5e8926cacb014f8bd7a37419",
    "00",
);

#[test]
fn the_hsm_signature_is_byte_for_byte_what_sp_core_signs() {
    // Both sign with RFC 6979 deterministic nonces, so a software key in sp-core (what a dev
    // gateway uses) and a module signing the digest produce identical signatures.
    use sp_core::Pair as _;
    let pair = sp_core::ecdsa::Pair::from_seed(&SECRET);
    for payload in [
        b"capsule: a short extrinsic payload".to_vec(),
        vec![0xab; 257],
    ] {
        let message = if payload.len() > MAX_UNHASHED_PAYLOAD_LEN {
            sp_crypto_hashing::blake2_256(&payload).to_vec()
        } else {
            payload.clone()
        };
        assert_eq!(
            pair.sign(&message).0,
            hsm_sign(&ecdsa_signing_digest(&payload))
        );
    }
}
