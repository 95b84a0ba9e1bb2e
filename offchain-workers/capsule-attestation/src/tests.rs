use std::collections::BTreeSet;

use capsule_agent::{Agent, SessionKeys};
use capsule_measure::fixture::Machine;
use capsule_primitives::{report::Nonce, AttestationFailure, SignedReport};
use capsule_root_of_trust::{software::SoftwareRootOfTrust, RootOfTrust};

use super::*;

const SALT: [u8; 32] = [0x5a; 32];

fn agent(machine: &Machine) -> Agent {
    Agent::new(
        machine.sources(),
        SALT,
        SessionKeys::generate().expect("keys"),
    )
    .expect("agent")
}

fn challenge(byte: u8) -> Challenge {
    Challenge {
        nonce: Nonce([byte; 32]),
        disk_samples: 4,
    }
}

/// An enrolled clean machine: its agent, its expectations, its pinned keys.
fn enrolled(machine: &Machine) -> (Agent, Expectations, HpcSessionKeys) {
    let agent = agent(machine);
    let first = agent.report(Nonce([0; 32]), 4).expect("reports");
    let expectations = Expectations::enrol(
        &first.report,
        BTreeSet::from([first.report.golden.boot_image]),
        None,
    );
    let keys = agent.session_keys().public();
    (agent, expectations, keys)
}

fn check(
    agent: &Agent,
    expectations: &Expectations,
    keys: &HpcSessionKeys,
) -> Result<(), AttestationFailure> {
    let signed = agent.report(Nonce([1; 32]), 4).expect("reports");
    check_report(&signed, &challenge(1), keys, expectations, None).map(drop)
}

#[test]
fn a_clean_machine_passes_and_each_change_fails_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let (agent, expectations, keys) = enrolled(&machine);
    assert_eq!(check(&agent, &expectations, &keys), Ok(()));

    machine.set_modules(&["virtio_net", "virtio_blk", "overlay", "usb_storage"]);
    assert_eq!(
        check(&agent, &expectations, &keys),
        Err(AttestationFailure::ModuleSet)
    );
    machine.set_modules(&["virtio_net", "virtio_blk", "overlay"]);

    machine.add_pci("0000:00:05.0", 0x10de, 0x2204, 0x030000);
    assert_eq!(
        check(&agent, &expectations, &keys),
        Err(AttestationFailure::DeviceSet)
    );
    std::fs::remove_dir_all(machine.path("sys/bus/pci/devices/0000:00:05.0")).expect("unplugs");

    machine.set_dmi("product_serial", "HPC-SN-0002");
    assert_eq!(
        check(&agent, &expectations, &keys),
        Err(AttestationFailure::Fingerprint)
    );
    let signed = agent.report(Nonce([1; 32]), 4).expect("reports");
    assert_eq!(
        changed_sources(&expectations.fingerprint, &signed.report.golden.fingerprint),
        ["dmi/product_serial"]
    );
    machine.set_dmi("product_serial", "HPC-SN-0001");

    std::fs::write(
        machine.path("proc/cmdline"),
        "console=ttyS0 init_on_free=0\n",
    )
    .expect("writes");
    assert_eq!(
        check(&agent, &expectations, &keys),
        Err(AttestationFailure::KernelCmdline)
    );
    std::fs::write(
        machine.path("proc/cmdline"),
        "console=ttyS0 init_on_free=1 capsule.agent=1\n",
    )
    .expect("writes");
    assert_eq!(check(&agent, &expectations, &keys), Ok(()), "back to clean");

    machine.change_boot_image();
    assert_eq!(
        check(&agent, &expectations, &keys),
        Err(AttestationFailure::BootImage)
    );
}

#[test]
fn a_written_disk_block_fails_once_sampled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let (agent, expectations, keys) = enrolled(&machine);
    // Write the blocks the next challenge samples, past the partition table (its own field).
    let table_blocks = capsule_measure::PARTITION_TABLE_BYTES
        .div_ceil(u64::from(capsule_measure::fixture::BLOCK_BYTES));
    let written: Vec<u64> =
        sample_indices(&Nonce([1; 32]), capsule_measure::fixture::DISK_BLOCKS, 4)
            .into_iter()
            .filter(|&index| index >= table_blocks)
            .collect();
    assert!(!written.is_empty());
    for &index in &written {
        machine.write_disk_block(index, 0xee);
    }
    assert_eq!(
        check(&agent, &expectations, &keys),
        Err(AttestationFailure::DiskBlocks)
    );
}

#[test]
fn a_disk_of_another_shape_or_no_samples_fails() {
    use ed25519_dalek::Signer;
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let (agent, expectations, keys) = enrolled(&machine);
    let resign = |mut signed: SignedReport| {
        signed.signature = agent
            .session_keys()
            .signing
            .sign(&report_signing_message(&signed.report))
            .to_bytes();
        signed
    };
    // A one-leaf "tree" whose leaf is the root: proves nothing about the disk.
    let mut forged = agent.report(Nonce([1; 32]), 4).expect("reports");
    let disk = forged.report.golden.disk.as_mut().expect("disk");
    disk.leaves = 1;
    disk.samples = capsule_primitives::BoundedVec::truncate_from(vec![
        capsule_primitives::report::DiskSample {
            index: 0,
            leaf: disk.root,
            proof: Default::default(),
        },
    ]);
    assert_eq!(
        check_report(&resign(forged), &challenge(1), &keys, &expectations, None),
        Err(AttestationFailure::DiskBlocks)
    );
    // No samples asked: nothing proven, so nothing passes.
    let none = agent.report(Nonce([1; 32]), 0).expect("reports");
    assert_eq!(
        check_report(
            &none,
            &Challenge {
                nonce: Nonce([1; 32]),
                disk_samples: 0
            },
            &keys,
            &expectations,
            None
        ),
        Err(AttestationFailure::DiskBlocks)
    );
}

#[test]
fn replays_foreign_keys_and_forged_signatures_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let (agent, expectations, keys) = enrolled(&machine);
    let old = agent.report(Nonce([1; 32]), 4).expect("reports");
    assert_eq!(
        check_report(&old, &challenge(2), &keys, &expectations, None),
        Err(AttestationFailure::WrongNonce),
        "a replayed report"
    );
    let stranger = self::agent(&machine);
    let theirs = stranger.report(Nonce([1; 32]), 4).expect("reports");
    assert_eq!(
        check_report(&theirs, &challenge(1), &keys, &expectations, None),
        Err(AttestationFailure::SessionKeysChanged)
    );
    let forged = capsule_agent::Agent::new(
        machine.sources(),
        SALT,
        SessionKeys::generate().expect("keys"),
    )
    .expect("agent")
    .with_fault(capsule_agent::Fault::WrongSigningKey)
    .report(Nonce([1; 32]), 4)
    .expect("reports");
    assert_eq!(
        check_report(
            &forged,
            &challenge(1),
            &forged.report.session_keys,
            &expectations,
            None
        ),
        Err(AttestationFailure::BadReportSignature)
    );
    let mut changed: SignedReport = old.clone();
    changed.report.info.processes += 1;
    assert_eq!(
        check_report(&changed, &challenge(1), &keys, &expectations, None),
        Err(AttestationFailure::BadReportSignature),
        "informational fields are signed too"
    );
}

#[test]
fn verifiers_check_the_countersignature_and_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(dir.path());
    let (agent, expectations, _) = enrolled(&machine);
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let root = SoftwareRootOfTrust::open_or_create(keys_dir.path()).expect("root");
    let signed = agent.report(Nonce([1; 32]), 4).expect("reports");
    let evidence = countersign(&root, [7; 32], signed, None).expect("countersigns");
    let key = root.device_public_key();
    assert_eq!(
        verify_evidence(&evidence, &key, &challenge(1), &expectations),
        Ok(())
    );
    assert_eq!(
        verify_evidence(&evidence, &key, &challenge(2), &expectations),
        Err(AttestationFailure::WrongNonce)
    );
    let mut other_gateway = evidence.clone();
    other_gateway.gateway = [8; 32];
    assert_eq!(
        verify_evidence(&other_gateway, &key, &challenge(1), &expectations),
        Err(AttestationFailure::BadCountersignature)
    );
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = SoftwareRootOfTrust::open_or_create(other_dir.path()).expect("root");
    assert_eq!(
        verify_evidence(
            &evidence,
            &other.device_public_key(),
            &challenge(1),
            &expectations
        ),
        Err(AttestationFailure::BadCountersignature)
    );
}
