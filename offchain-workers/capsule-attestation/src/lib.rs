//! # Capsule attestation
//!
//! The gateway's side of attesting its HPC (ARCHITECTURE, flows 2-4):
//!
//! - [`Expectations`]: what a report must show: the golden boot images, and what the HPC
//!   enrolled at its first clean boot (command line, module set, PCI/USB ids, fingerprint,
//!   partition table, disk root, and where it has a TPM, its attestation key and PCR values).
//! - [`check_report`]: one signed report against a challenge, the boot's pinned session keys and
//!   the expectations; the first failure as a typed [`AttestationFailure`].
//! - [`countersign`] and [`verify_evidence`]: the gateway's root of trust signs each accepted
//!   report; a verifier on another gateway checks that signature and the report itself.
//! - [`power`]: the power trait (stop and power-cycle the HPC) and a recording double.
//! - [`server`]: the challenge loop over the agent channel: unpredictable intervals, checks,
//!   countersignatures, and on a violation the task stopped, the HPC power-cycled and the
//!   evidence recorded.
use std::collections::BTreeSet;

use capsule_primitives::{
    keys::{FingerprintRoot, HpcSessionKeys},
    measurement::MeasurementDigest,
    report::{
        countersign_message, report_signing_message, sample_indices, verify_merkle_proof, DeviceId,
        Fingerprint, HpcReport, Nonce,
    },
    AttestationEvidence, AttestationFailure, DevicePublicKey, SignedReport,
};
use capsule_root_of_trust::{
    tpm_quote::{verify_quote, ClockInfo},
    RootOfTrust, RootOfTrustError,
};

pub mod power;
pub mod server;
pub mod task;

/// What a TPM-equipped HPC must quote.
#[derive(Clone, Debug, PartialEq, Eq, codec::Encode, codec::Decode)]
pub struct TpmExpectations {
    /// The enrolled TPM's EK (the RSA modulus its certificate holds): the HPC is this TPM.
    pub ek_modulus: Vec<u8>,
    /// This boot's attestation key (compressed SEC1), activated against that EK at the start of
    /// the boot's session.
    pub attestation_key: [u8; 33],
    /// The pinned PCR selection and values, increasing.
    pub pcrs: Vec<(u8, [u8; 32])>,
}

/// The enrolled disk: its tree's root, and its shape (so an agent cannot claim a smaller tree
/// whose nodes it kept instead of the disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, codec::Encode, codec::Decode)]
pub struct DiskShape {
    pub root: [u8; 32],
    pub leaves: u64,
    pub block_bytes: u32,
}

/// What an HPC's reports must show (SCALE-encoded on the gateway's disk).
#[derive(Clone, Debug, PartialEq, Eq, codec::Encode, codec::Decode)]
pub struct Expectations {
    /// The approved HPC boot images (golden measurements).
    pub boot_images: BTreeSet<MeasurementDigest>,
    pub kernel_cmdline: Vec<u8>,
    pub modules: Vec<Vec<u8>>,
    pub devices: Vec<DeviceId>,
    /// The enrolled fingerprint (its root is what the chain holds; the leaves name a changed
    /// source).
    pub fingerprint: Fingerprint,
    pub partition_table: MeasurementDigest,
    pub disk: Option<DiskShape>,
    pub tpm: Option<TpmExpectations>,
}

impl Expectations {
    /// Enrols an HPC from the golden fields of a report taken at a clean boot (the report
    /// itself must then pass [`check_report`] like any other), with the approved boot images.
    pub fn enrol(
        report: &HpcReport,
        boot_images: BTreeSet<MeasurementDigest>,
        tpm: Option<TpmExpectations>,
    ) -> Self {
        let golden = &report.golden;
        Self {
            boot_images,
            kernel_cmdline: golden.kernel_cmdline.to_vec(),
            modules: golden.modules.iter().map(|m| m.to_vec()).collect(),
            devices: golden.devices.to_vec(),
            fingerprint: golden.fingerprint.clone(),
            partition_table: golden.partition_table,
            disk: golden.disk.as_ref().map(|d| DiskShape {
                root: d.root,
                leaves: d.leaves,
                block_bytes: d.block_bytes,
            }),
            tpm,
        }
    }

    /// The enrolled fingerprint root.
    pub fn fingerprint_root(&self) -> FingerprintRoot {
        self.fingerprint.root()
    }
}

/// What a challenge asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub nonce: Nonce,
    pub disk_samples: u32,
}

/// Checks `signed` against `challenge`, the boot's pinned session keys, and `expectations`;
/// `last_clock` is the clock of the TPM's previous accepted quote. Returns the quote's clock.
pub fn check_report(
    signed: &SignedReport,
    challenge: &Challenge,
    pinned: &HpcSessionKeys,
    expectations: &Expectations,
    last_clock: Option<&ClockInfo>,
) -> Result<Option<ClockInfo>, AttestationFailure> {
    let report = &signed.report;
    if report.nonce != challenge.nonce {
        return Err(AttestationFailure::WrongNonce);
    }
    if report.session_keys != *pinned {
        return Err(AttestationFailure::SessionKeysChanged);
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(&pinned.ed25519)
        .map_err(|_| AttestationFailure::BadReportSignature)?;
    key.verify_strict(
        &report_signing_message(report),
        &ed25519_dalek::Signature::from_bytes(&signed.signature),
    )
    .map_err(|_| AttestationFailure::BadReportSignature)?;
    let golden = &report.golden;
    let sorted = golden.modules.windows(2).all(|w| w[0] < w[1])
        && golden.devices.windows(2).all(|w| w[0] < w[1])
        && golden.fingerprint.is_well_formed();
    if !sorted {
        return Err(AttestationFailure::Malformed);
    }
    if !expectations.boot_images.contains(&golden.boot_image) {
        return Err(AttestationFailure::BootImage);
    }
    if golden.kernel_cmdline.as_slice() != expectations.kernel_cmdline.as_slice() {
        return Err(AttestationFailure::KernelCmdline);
    }
    if !golden
        .modules
        .iter()
        .map(|m| m.as_slice())
        .eq(expectations.modules.iter().map(Vec::as_slice))
    {
        return Err(AttestationFailure::ModuleSet);
    }
    if golden.devices.as_slice() != expectations.devices.as_slice() {
        return Err(AttestationFailure::DeviceSet);
    }
    if golden.fingerprint.root() != expectations.fingerprint_root() {
        return Err(AttestationFailure::Fingerprint);
    }
    if golden.partition_table != expectations.partition_table {
        return Err(AttestationFailure::PartitionTable);
    }
    match (&golden.disk, expectations.disk) {
        (None, None) => {}
        (
            Some(disk),
            Some(DiskShape {
                root,
                leaves,
                block_bytes,
            }),
        ) => {
            let wanted = sample_indices(&challenge.nonce, disk.leaves, challenge.disk_samples);
            let proven = disk.root == root
                && disk.leaves == leaves
                && disk.block_bytes == block_bytes
                && !wanted.is_empty()
                && disk.samples.len() == wanted.len()
                && disk.samples.iter().zip(&wanted).all(|(sample, &index)| {
                    sample.index == index
                        && verify_merkle_proof(
                            &root,
                            disk.leaves,
                            sample.index,
                            &sample.leaf,
                            &sample.proof,
                        )
                });
            if !proven {
                return Err(AttestationFailure::DiskBlocks);
            }
        }
        _ => return Err(AttestationFailure::DiskBlocks),
    }
    match (&report.quote, &expectations.tpm) {
        (_, None) => Ok(None),
        (None, Some(_)) => Err(AttestationFailure::TpmQuote),
        (Some(quote), Some(tpm)) => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&tpm.attestation_key)
                .map_err(|_| AttestationFailure::TpmQuote)?;
            verify_quote(quote, &key, &report.quoted_digest(), &tpm.pcrs, last_clock)
                .map(Some)
                .map_err(|_| AttestationFailure::TpmQuote)
        }
    }
}

/// The names of the fingerprint sources whose leaves differ from the enrolled ones (present
/// in only one of the two included): what an audit record names.
pub fn changed_sources(enrolled: &Fingerprint, reported: &Fingerprint) -> Vec<String> {
    let leaves = |f: &Fingerprint| -> BTreeSet<(Vec<u8>, [u8; 32])> {
        f.sources
            .iter()
            .map(|s| (s.name.to_vec(), s.leaf))
            .collect()
    };
    let (a, b) = (leaves(enrolled), leaves(reported));
    let names: BTreeSet<String> = a
        .symmetric_difference(&b)
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
        .collect();
    names.into_iter().collect()
}

/// The gateway's countersignature over an accepted report, vouching for the boot's
/// attestation key where the HPC has a TPM.
pub fn countersign(
    root: &dyn RootOfTrust,
    gateway: [u8; 32],
    signed: SignedReport,
    attestation_key: Option<[u8; 33]>,
) -> Result<AttestationEvidence, RootOfTrustError> {
    let countersignature = root.sign(&countersign_message(
        &gateway,
        &signed.digest(),
        &attestation_key,
    ))?;
    Ok(AttestationEvidence {
        gateway,
        signed,
        attestation_key,
        countersignature,
    })
}

/// What a verifier on another gateway runs: the countersignature is by the gateway's
/// registered device key, and the report passes [`check_report`] for the verifier's own
/// challenge (its session keys are the report's own, which the round records), its TPM quote
/// checked with the attestation key the gateway vouched for.
pub fn verify_evidence(
    evidence: &AttestationEvidence,
    gateway_key: &DevicePublicKey,
    challenge: &Challenge,
    expectations: &Expectations,
) -> Result<(), AttestationFailure> {
    let message = countersign_message(
        &evidence.gateway,
        &evidence.signed.digest(),
        &evidence.attestation_key,
    );
    if !capsule_root_of_trust::verify(gateway_key, &message, &evidence.countersignature) {
        return Err(AttestationFailure::BadCountersignature);
    }
    let mut expectations = expectations.clone();
    if let Some(tpm) = expectations.tpm.as_mut() {
        tpm.attestation_key = evidence
            .attestation_key
            .ok_or(AttestationFailure::TpmQuote)?;
    }
    check_report(
        &evidence.signed,
        challenge,
        &evidence.signed.report.session_keys,
        &expectations,
        None,
    )
    .map(drop)
}

#[cfg(test)]
mod tests;
