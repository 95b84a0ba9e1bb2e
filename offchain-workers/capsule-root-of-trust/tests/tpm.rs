//! The TPM backend against swtpm (a TPM 2.0 emulator this test manufactures and starts, with
//! an EK certificate from swtpm's local CA, pinned here as the only CA): the EK certificate
//! chains to the pinned CA and holds the TPM's EK; a credential made in software for the
//! attestation key is recovered by this TPM only for that key; a quote over a report's digest passes; the
//! same quote checked against another nonce, after a PCR change, or replayed, fails.
#![cfg(feature = "tpm")]
use std::path::{Path, PathBuf};

use capsule_root_of_trust::{
    credential::make_credential,
    swtpm::{Swtpm, LOCAL_CA},
    tpm::{verify_ek_certificate, Tpm},
    tpm_quote::{verify_quote, QuoteError},
};

const PCRS: [u8; 6] = [0, 1, 2, 3, 7, 16];

fn swtpm() -> Swtpm {
    Swtpm::start().expect("swtpm starts (scripts/setup.sh installs it)")
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

#[test]
fn the_ek_chains_to_the_pinned_ca_and_quotes_bind_the_nonce_and_the_pcrs() {
    let emulator = swtpm();
    let tpm = Tpm::connect(&emulator.tcti()).expect("connects");

    // EK certificate: chains to swtpm's CA (pinned) and holds this TPM's EK.
    let ca = PathBuf::from(LOCAL_CA);
    let certificate = tpm.ek_certificate().expect("EK certificate");
    let modulus = verify_ek_certificate(
        &certificate,
        &[read(ca.join("swtpm-localca-rootca-cert.pem"))],
        &[read(ca.join("issuercert.pem"))],
    )
    .expect("chains to the pinned CA");
    assert_eq!(
        modulus,
        tpm.ek_modulus().expect("EK"),
        "the certificate is this TPM's"
    );
    // With no pinned CA, or its intermediate missing, it does not chain.
    assert!(verify_ek_certificate(&certificate, &[], &[]).is_err());
    assert!(verify_ek_certificate(
        &certificate,
        &[read(ca.join("swtpm-localca-rootca-cert.pem"))],
        &[]
    )
    .is_err());

    // The attestation key is bound to this EK: a credential made for it (in software, from the
    // certificate's key) comes back only through this TPM and only for that key's name.
    let key = tpm.create_attestation_key().expect("attestation key");
    let secret = [0x5e; 32];
    let credential = make_credential(&modulus, &key.name, &secret).expect("makes");
    assert_eq!(
        tpm.activate_credential(&key, &credential)
            .expect("activates"),
        secret
    );
    let wrong_name =
        make_credential(&modulus, &[&key.name[..2], &[0u8; 32]].concat(), &secret).expect("makes");
    assert!(
        tpm.activate_credential(&key, &wrong_name).is_err(),
        "another key's name"
    );
    let mut garbled = credential.clone();
    garbled.id_object[40] ^= 1;
    assert!(
        tpm.activate_credential(&key, &garbled).is_err(),
        "a changed credential"
    );

    // Quotes.
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public).expect("P-256");
    let nonce = [0x11; 32];
    let quote = tpm.quote(&key, &nonce, &PCRS).expect("quotes");
    let golden: Vec<(u8, [u8; 32])> = quote.pcrs.iter().copied().collect();
    let clock = verify_quote(&quote, &verifying, &nonce, &golden, None).expect("passes");
    assert_eq!(
        verify_quote(&quote, &verifying, &[0x12; 32], &golden, None),
        Err(QuoteError::WrongNonce)
    );
    assert_eq!(
        verify_quote(&quote, &verifying, &nonce, &golden[..5], None),
        Err(QuoteError::WrongSelection),
        "another selection than the pinned one"
    );
    assert_eq!(
        verify_quote(&quote, &verifying, &nonce, &golden, Some(&clock)),
        Err(QuoteError::ClockWentBack),
        "the same quote again"
    );
    let mut forged = quote.clone();
    forged.pcrs[0].1[0] ^= 1;
    assert_eq!(
        verify_quote(&forged, &verifying, &nonce, &golden, None),
        Err(QuoteError::PcrDigest),
        "reported values that are not the quoted ones"
    );
    let other = tpm.create_attestation_key().expect("another key");
    let other = p256::ecdsa::VerifyingKey::from_sec1_bytes(&other.public).expect("P-256");
    assert_eq!(
        verify_quote(&quote, &other, &nonce, &golden, None),
        Err(QuoteError::Signature)
    );

    // A PCR change: the next quote no longer matches the golden values.
    tpm.extend_pcr16([0xab; 32]).expect("extends");
    let nonce = [0x21; 32];
    let changed = tpm.quote(&key, &nonce, &PCRS).expect("quotes");
    assert_eq!(
        verify_quote(&changed, &verifying, &nonce, &golden, Some(&clock)),
        Err(QuoteError::PcrValues)
    );
    let now: Vec<(u8, [u8; 32])> = changed.pcrs.iter().copied().collect();
    assert_ne!(now[5], golden[5], "PCR 16 moved");
    let clock = verify_quote(&changed, &verifying, &nonce, &now, Some(&clock))
        .expect("passes against the new values, its clock after the first");

    // More PCRs than one PCR_Read returns (8): read in parts, quoted at once.
    let all: Vec<u8> = (0..24).collect();
    let nonce = [0x31; 32];
    let wide = tpm.quote(&key, &nonce, &all).expect("quotes 24 PCRs");
    let values: Vec<(u8, [u8; 32])> = wide.pcrs.iter().copied().collect();
    assert_eq!(values.len(), 24);
    assert_eq!(values[16], now[5], "PCR 16 is read from the right part");
    verify_quote(&wide, &verifying, &nonce, &values, Some(&clock)).expect("passes");
    assert!(
        tpm.quote(&key, &nonce, &[24]).is_err(),
        "there is no PCR 24"
    );
}

#[test]
fn the_tpm_root_of_trust_keeps_its_device_key_and_seals_for_itself_only() {
    use capsule_root_of_trust::{tpm::TpmRootOfTrust, verify, RootOfTrust, RootOfTrustError};
    let emulator = swtpm();
    let tcti = emulator.tcti();
    let root = TpmRootOfTrust::new(Tpm::connect(&tcti).expect("connects")).expect("device key");
    let signature = root.sign(b"countersigned report").expect("signs");
    assert!(verify(
        &root.device_public_key(),
        b"countersigned report",
        &signature
    ));
    assert!(!verify(
        &root.device_public_key(),
        b"another report",
        &signature
    ));
    let sealed = root.seal(b"the VRF key").expect("seals");
    drop(root);

    // Another start: the same device key, and the blob unseals.
    let again = TpmRootOfTrust::new(Tpm::connect(&tcti).expect("connects")).expect("device key");
    assert!(verify(
        &again.device_public_key(),
        b"countersigned report",
        &signature
    ));
    assert_eq!(again.unseal(&sealed).expect("unseals"), b"the VRF key");
    let mut changed = sealed.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    assert!(matches!(
        again.unseal(&changed),
        Err(RootOfTrustError::Unseal)
    ));
    assert!(matches!(
        again.unseal(&[0, 9, 1]),
        Err(RootOfTrustError::Unseal)
    ));

    // Another TPM: another device key, and the blob does not unseal there.
    let other = swtpm();
    let stranger =
        TpmRootOfTrust::new(Tpm::connect(&other.tcti()).expect("connects")).expect("device key");
    assert_ne!(stranger.device_public_key(), again.device_public_key());
    assert!(matches!(
        stranger.unseal(&sealed),
        Err(RootOfTrustError::Unseal)
    ));
}
