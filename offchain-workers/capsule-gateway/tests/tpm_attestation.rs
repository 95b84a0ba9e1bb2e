//! An HPC with a TPM (swtpm inside the HPC's namespace) and a gateway that attests TPMs
//! (swtpm's local CA pinned), as real processes on a network-namespace pair: the gateway
//! establishes the TPM at the session's start (EK certificate chain, a credential only that
//! TPM recovers for the boot's attestation key), enrols its quoted PCRs, and accepts quoted
//! reports. A boot whose PCR 16 was extended fails its quote; an HPC with another TPM, or an
//! agent that says it has none, is refused as an unknown TPM; each power-cycles.
use std::{ffi::OsStr, os::fd::AsFd, time::Duration};

use capsule_root_of_trust::{
    swtpm::{Swtpm, LOCAL_CA},
    tpm::Tpm,
};
use common::*;
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

mod common;

/// Runs `f` on a thread inside namespace `ns`.
fn within<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("namespace");
        move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network)).expect("setns");
        f()
    })
    .join()
    .expect("thread")
}

#[test]
fn a_tpm_hpc_is_established_enrolled_and_held_to_its_quotes() {
    let setup = setup();
    let root = format!("{LOCAL_CA}/swtpm-localca-rootca-cert.pem");
    let issuer = format!("{LOCAL_CA}/issuercert.pem");
    // The local CA exists once swtpm_setup ran once: the first emulator makes it.
    let tpm = Swtpm::start_in(Some(&setup.link.hpc)).expect("swtpm in the HPC's namespace");
    let _gateway = setup.gateway_with(
        50,
        &[
            OsStr::new("--tpm-ca"),
            OsStr::new(&root),
            OsStr::new("--tpm-intermediate"),
            OsStr::new(&issuer),
            OsStr::new("--tpm-pcrs"),
            OsStr::new("0,1,2,3,7,16"),
        ],
    );
    let agent = setup.agent_with(PORT, None, Some(&tpm.tcti()));
    let enrolled = setup.wait_for(0, "enrolled", Duration::from_secs(120));
    assert_eq!(enrolled["tpm"], true, "{enrolled}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while setup
        .events()
        .iter()
        .filter(|e| e["event"] == "accepted")
        .count()
        < 10
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            setup.events().last()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(setup.power_cycles(), 0);

    // The boot ends (its channel drops: a violation of its own), PCR 16 is extended, and the
    // next boot's quote no longer matches the enrolled values.
    let skip = setup.events().len();
    drop(agent);
    expect_violation(&setup, skip, 0, "closed");
    let tcti = tpm.tcti();
    within(&setup.link.hpc, move || {
        Tpm::connect(&tcti)
            .expect("connects")
            .extend_pcr16([0xab; 32])
            .expect("extends");
    });
    let skip = setup.events().len();
    let agent = setup.agent_with(PORT, None, Some(&tpm.tcti()));
    expect_violation(&setup, skip, 1, "TpmQuote");
    drop(agent);

    // Another TPM in the HPC: refused at the session's start.
    let other = Swtpm::start_in(Some(&setup.link.hpc)).expect("another swtpm");
    let skip = setup.events().len();
    let agent = setup.agent_with(PORT, None, Some(&other.tcti()));
    expect_violation(&setup, skip, 2, "UnknownTpm");
    drop(agent);

    // An agent that says the HPC has no TPM: a downgrade, refused the same way.
    let skip = setup.events().len();
    let agent = setup.agent_with(PORT, None, None);
    expect_violation(&setup, skip, 3, "UnknownTpm");
    drop(agent);
}
