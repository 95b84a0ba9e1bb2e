//! TPM2_MakeCredential in software (TPM 2.0 Part 1, "Credential Protection"): what a gateway
//! without a TPM of its own runs to bind an HPC's attestation key to the HPC's EK. Only the TPM
//! holding the EK's private key recovers the credential, and only by `TPM2_ActivateCredential`
//! for a loaded key whose name is the one given: so an HPC that returns the credential proves
//! its attestation key lives in the TPM the EK certificate vouches for.
//!
//! For an RSA-2048 EK of the standard template (name algorithm SHA-256, AES-128-CFB):
//! - a random 32-byte seed, encrypted to the EK with RSA-OAEP (SHA-256, label `IDENTITY\0`);
//! - the credential as a `TPM2B_DIGEST`, encrypted with AES-128-CFB (zero IV) under
//!   `KDFa(SHA-256, seed, "STORAGE", name, -, 128)`;
//! - an outer HMAC-SHA-256 under `KDFa(SHA-256, seed, "INTEGRITY", -, -, 256)` over the
//!   encrypted credential and the name.
use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use rsa::{BigUint, Oaep, RsaPublicKey};
use sha2::Sha256;

/// What `TPM2_ActivateCredential` takes: the ID object (`integrityHMAC ‖ encIdentity`) and the
/// encrypted seed, each without its `TPM2B` size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub id_object: Vec<u8>,
    pub encrypted_secret: Vec<u8>,
}

/// Why a credential cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the EK is not a usable RSA key: {0}")]
    Key(String),
    #[error("a credential holds at most 32 bytes")]
    TooLong,
}

/// KDFa of TPM 2.0 Part 1 (SP 800-108 counter mode with HMAC-SHA-256): `bits` of key material.
pub fn kdf_a(key: &[u8], label: &str, context_u: &[u8], context_v: &[u8], bits: u32) -> Vec<u8> {
    let bytes = bits.div_ceil(8) as usize;
    let mut out = Vec::with_capacity(bytes + 32);
    let mut counter = 1u32;
    while out.len() < bytes {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&counter.to_be_bytes());
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(context_u);
        mac.update(context_v);
        mac.update(&bits.to_be_bytes());
        out.extend_from_slice(&mac.finalize().into_bytes());
        counter += 1;
    }
    out.truncate(bytes);
    out
}

/// Makes `credential` (at most 32 bytes) for the key named `name`, recoverable only by the TPM
/// whose RSA EK has modulus `ek_modulus` (exponent 65537).
pub fn make_credential(
    ek_modulus: &[u8],
    name: &[u8],
    credential: &[u8],
) -> Result<Credential, CredentialError> {
    if credential.len() > 32 {
        return Err(CredentialError::TooLong);
    }
    let ek = RsaPublicKey::new(BigUint::from_bytes_be(ek_modulus), BigUint::from(65_537u32))
        .map_err(|e| CredentialError::Key(e.to_string()))?;
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let encrypted_secret = ek
        .encrypt(
            &mut OsRng,
            Oaep::new_with_label::<Sha256, _>("IDENTITY\0"),
            &seed,
        )
        .map_err(|e| CredentialError::Key(e.to_string()))?;

    let sym_key = kdf_a(&seed, "STORAGE", name, &[], 128);
    let mut identity = (credential.len() as u16).to_be_bytes().to_vec();
    identity.extend_from_slice(credential);
    cfb_mode::Encryptor::<aes::Aes128>::new_from_slices(&sym_key, &[0u8; 16])
        .map_err(|e| CredentialError::Key(e.to_string()))?
        .encrypt(&mut identity);

    let hmac_key = kdf_a(&seed, "INTEGRITY", &[], &[], 256);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&hmac_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&identity);
    mac.update(name);
    let outer = mac.finalize().into_bytes();

    let mut id_object = 32u16.to_be_bytes().to_vec();
    id_object.extend_from_slice(&outer);
    id_object.extend_from_slice(&identity);
    Ok(Credential {
        id_object,
        encrypted_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SP 800-108 counter mode, checked against Python's hmac/hashlib.
    #[test]
    fn kdf_a_is_pinned() {
        assert_eq!(
            hex(&kdf_a(&[0x0b; 32], "STORAGE", b"name", b"", 128)),
            "913e36c870a0fc53ad2d9e28940d1e13"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn credentials_are_at_most_a_digest() {
        assert!(matches!(
            make_credential(&[0xc5; 256], b"name", &[0; 33]),
            Err(CredentialError::TooLong)
        ));
    }
}
