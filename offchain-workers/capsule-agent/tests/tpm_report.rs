//! Reports with a TPM quote, against swtpm: the attestation key is made under the EK whose
//! certificate chains to the pinned CA and bound to it by a credential only that TPM recovers;
//! the gateway enrols the quoted PCR values; later reports pass with a quote over their own
//! digest, and fail once a PCR changes.
use std::collections::BTreeSet;

use capsule_agent::{Agent, SessionKeys, TpmQuoter};
use capsule_attestation::{check_report, Challenge, Expectations, TpmExpectations};
use capsule_measure::fixture::Machine;
use capsule_primitives::{report::Nonce, AttestationFailure};
use capsule_root_of_trust::{
    credential::make_credential,
    swtpm::Swtpm,
    tpm::{verify_ek_certificate, Tpm},
    tpm_quote::{verify_quote, QuoteError},
};

#[test]
fn quoted_reports_pass_until_a_pcr_changes() {
    let emulator = Swtpm::start().expect("swtpm (scripts/setup.sh installs it)");
    let tpm = Tpm::connect(&emulator.tcti()).expect("connects");
    let (root, issuer) = Swtpm::ca_certificates().expect("the local CA");
    let modulus = verify_ek_certificate(
        &tpm.ek_certificate().expect("EK certificate"),
        &[root],
        &[issuer],
    )
    .expect("the EK chains to the pinned CA");
    let key = tpm.create_attestation_key().expect("attestation key");
    // The gateway binds the key to the EK: only this TPM, holding that key, recovers the secret.
    let credential = make_credential(&modulus, &key.name, &[9; 32]).expect("credential");
    assert_eq!(
        tpm.activate_credential(&key, &credential)
            .expect("activates"),
        [9; 32]
    );
    let attestation_key = key.public;

    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let agent = Agent::new(
        machine.sources(),
        [0x5a; 32],
        SessionKeys::generate().expect("keys"),
    )
    .expect("agent")
    .with_tpm(TpmQuoter {
        tpm,
        key,
        pcrs: vec![0, 1, 2, 3, 7, 16],
    });
    let first = agent.report(Nonce([0; 32]), 4).expect("reports");
    let quote = first.report.quote.as_ref().expect("a quote");
    let expectations = Expectations::enrol(
        &first.report,
        BTreeSet::from([first.report.golden.boot_image]),
        Some(TpmExpectations {
            ek_modulus: modulus,
            attestation_key,
            pcrs: quote.pcrs.iter().copied().collect(),
        }),
    );
    let keys = agent.session_keys().public();
    let challenge = |byte| Challenge {
        nonce: Nonce([byte; 32]),
        disk_samples: 4,
    };
    let clock = check_report(&first, &challenge(0), &keys, &expectations, None)
        .expect("the enrolling report passes")
        .expect("a clock");
    let second = agent.report(Nonce([1; 32]), 4).expect("reports");
    let later = check_report(&second, &challenge(1), &keys, &expectations, Some(&clock))
        .expect("passes")
        .expect("a clock");
    assert!(later.follows(&clock));
    assert_eq!(
        check_report(&second, &challenge(1), &keys, &expectations, Some(&later)),
        Err(AttestationFailure::TpmQuote),
        "the same quote again"
    );

    // A verifier on another gateway checks the quote with the key the gateway vouched for.
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let root =
        capsule_root_of_trust::software::SoftwareRootOfTrust::open_or_create(keys_dir.path())
            .expect("root");
    let gateway_key = capsule_root_of_trust::RootOfTrust::device_public_key(&root);
    let evidence =
        capsule_attestation::countersign(&root, [7; 32], second.clone(), Some(attestation_key))
            .expect("countersigns");
    assert_eq!(
        capsule_attestation::verify_evidence(&evidence, &gateway_key, &challenge(1), &expectations),
        Ok(())
    );
    let mut swapped = evidence.clone();
    let other = p256::SecretKey::from_slice(&[5; 32])
        .expect("scalar")
        .public_key();
    let mut other_key = [0u8; 33];
    other_key.copy_from_slice(
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&other, true).as_bytes(),
    );
    swapped.attestation_key = Some(other_key);
    assert_eq!(
        capsule_attestation::verify_evidence(&swapped, &gateway_key, &challenge(1), &expectations),
        Err(AttestationFailure::BadCountersignature),
        "the vouched-for key is countersigned"
    );

    agent
        .tpm()
        .expect("tpm")
        .tpm
        .extend_pcr16([0xab; 32])
        .expect("extends");
    let changed = agent.report(Nonce([2; 32]), 4).expect("reports");
    assert_eq!(
        check_report(&changed, &challenge(2), &keys, &expectations, Some(&later)),
        Err(AttestationFailure::TpmQuote)
    );
    // And for that reason: the values, not anything else about the quote.
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&attestation_key).expect("P-256");
    let tpm = expectations.tpm.as_ref().expect("tpm");
    assert_eq!(
        verify_quote(
            changed.report.quote.as_ref().expect("a quote"),
            &key,
            &changed.report.quoted_digest(),
            &tpm.pcrs,
            Some(&later)
        ),
        Err(QuoteError::PcrValues)
    );
}
