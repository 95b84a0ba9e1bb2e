//! Measured boot: the HPC is a UEFI machine (OVMF) with a TPM 2.0 (swtpm) under TCG. Its
//! firmware PXE-boots iPXE's EFI build from the gateway, which chains the unified kernel image;
//! the firmware measures what it loads into PCR 4. The gateway attests TPMs (swtpm's local CA
//! pinned): it establishes the TPM at every boot and holds each boot to the PCR values quoted at
//! enrolment.
//!
//! One machine, in order:
//! 1. gateway A enrols it (the quote's PCR values recorded); the firmware's event log replays
//!    to them and shows the image, by its Authenticode digest, loaded into PCR 4; a second boot
//!    from gateway A is accepted against them: the PCRs are equal across boots;
//! 2. gateway B (its own key, salt and enrolment) enrols the same machine: the same PCR values;
//! 3. gateway B serves an image whose initramfs differs in one byte (approved, so only the TPM
//!    can tell): its PCRs no longer match, and the boot is flagged.
//!
//! Needs root, qemu-system-x86, ovmf, ipxe, dnsmasq, swtpm and the built image.
mod common;

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use capsule_boot_server::image::Build;
use capsule_root_of_trust::swtpm::{VmTpm, LOCAL_CA};
use common::{
    hex, read_events,
    vm::{self, attested_after, Firmware, BOOT_TIMEOUT},
    wait_for_event, Link, Process,
};

/// The boot message `/init` prints, in the initramfs; the variant changes its first letter.
const MARKER: &[u8] = b"capsule-hpc: $(uname -r) up";

fn run(command: &mut Command) {
    let status = command.status().expect("runs");
    assert!(status.success(), "{command:?}: {status}");
}

/// `build`'s image with one byte of its initramfs changed (the `c` of /init's boot message
/// becomes `C`), still bootable: the initramfs is decompressed, changed, compressed again and
/// written over the image's `.initrd` section. Returns its path and digest.
fn variant(build: &Build, dir: &Path) -> (PathBuf, String) {
    let image = std::fs::read(&build.image).expect("the image");
    let initrd = capsule_measure::uki_section(&image, ".initrd").expect("its initramfs");
    std::fs::write(dir.join("initrd.zst"), initrd).expect("write");
    run(Command::new("zstd")
        .args(["-q", "-d", "-f", "-o"])
        .arg(dir.join("initrd.cpio"))
        .arg(dir.join("initrd.zst")));
    let mut cpio = std::fs::read(dir.join("initrd.cpio")).expect("cpio");
    let at = cpio
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("/init's boot message in the initramfs");
    cpio[at] = b'C';
    std::fs::write(dir.join("initrd.cpio"), cpio).expect("write");
    // The section keeps its size: compressed a little harder than the build does (a long
    // window), then padded with zeros to that size (the kernel skips zeros after an archive).
    run(Command::new("zstd")
        .args(["-q", "-19", "--long=27", "-T1", "--no-progress", "-f", "-o"])
        .arg(dir.join("variant.zst"))
        .arg(dir.join("initrd.cpio")));
    let mut compressed = std::fs::read(dir.join("variant.zst")).expect("variant");
    assert!(
        compressed.len() <= initrd.len(),
        "the variant fits its section"
    );
    compressed.resize(initrd.len(), 0);
    // In place of the section's bytes: nothing else in the image changes.
    let at = initrd.as_ptr() as usize - image.as_ptr() as usize;
    let mut changed = image.clone();
    changed[at..at + compressed.len()].copy_from_slice(&compressed);
    let out = dir.join("variant.efi");
    std::fs::write(&out, changed).expect("write");
    let digest = hex(&capsule_boot_server::image::image_digest(&out)
        .expect("digest")
        .0);
    (out, digest)
}

/// The PCR values gateway `dir` enrolled.
fn enrolled_pcrs(events: &Path) -> serde_json::Value {
    let (_, enrolled) = wait_for_event(events, 0, "enrolled", Duration::from_secs(1));
    assert_eq!(enrolled["tpm"], true, "{enrolled}");
    enrolled["pcrs"].clone()
}

#[test]
fn a_uefi_hpc_boots_measured_and_is_held_to_its_pcrs() {
    let build = vm::built_image();
    let link = Link::new();
    vm::bridge(&link);
    let root = tempfile::tempdir().expect("tempdir");
    let (hpc, a, b) = (
        root.path().join("hpc"),
        root.path().join("a"),
        root.path().join("b"),
    );
    for dir in [&hpc, &a, &b] {
        std::fs::create_dir(dir).expect("dir");
    }
    for dir in [&a, &b] {
        let (private, _) = capsule_channel::generate_static_key().expect("key");
        std::fs::write(dir.join("noise.key"), hex(&private)).expect("key");
    }
    vm::disk(&hpc);
    let qmp = hpc.join("qmp.sock");
    let ca = format!("{LOCAL_CA}/swtpm-localca-rootca-cert.pem");
    let issuer = format!("{LOCAL_CA}/issuercert.pem");
    let trust: [&OsStr; 4] = [
        "--tpm-ca".as_ref(),
        ca.as_ref(),
        "--tpm-intermediate".as_ref(),
        issuer.as_ref(),
    ];
    let golden = [hex(&build.golden.0)];
    let tpm = VmTpm::start().expect("swtpm");
    let _machine = vm::machine(
        &link,
        &hpc,
        "HPC-SN-0001",
        &Firmware::Uefi {
            tpm: tpm.qemu_args(),
        },
    );
    let console =
        || std::fs::read_to_string(hpc.join("console-HPC-SN-0001.log")).unwrap_or_default();

    // 1. Gateway A: enrolment, then a second boot against it.
    let gateway_a = vm::gateway(&link, &a, &qmp, &build.image, &golden, &trust);
    let (first, _) = attested_after(&a.join("events.jsonl"), 0);
    let pcrs = enrolled_pcrs(&a.join("events.jsonl"));
    eprintln!("boot 1 (UEFI, enrolment): power-on to attested {first:.1?}; PCRs {pcrs}");
    // The firmware's event log replays to the quote and shows the image loaded into PCR 4, by
    // its Authenticode digest (computed here from the image as built).
    let (_, measured) = wait_for_event(&a.join("events.jsonl"), 0, "measured_boot", BOOT_TIMEOUT);
    let authenticode =
        capsule_measure::authenticode_sha256(&std::fs::read(&build.image).expect("the image"))
            .expect("a PE image");
    assert_eq!(measured["image"], hex(&authenticode), "{measured}");
    eprintln!("boot applications in PCR 4: {}", measured["applications"]);
    let text = console();
    assert!(text.contains("capsule-hpc:"), "{text}");
    stop(gateway_a);
    let skip = read_events(&a.join("events.jsonl")).len();
    let gateway_a = vm::gateway(&link, &a, &qmp, &build.image, &golden, &trust);
    let (second, _) = attested_after(&a.join("events.jsonl"), skip);
    let after = &read_events(&a.join("events.jsonl"))[skip..];
    assert!(
        after
            .iter()
            .all(|e| e["event"] != "violation" && e["event"] != "enrolled"),
        "the second boot's quote matches the enrolment: {after:?}"
    );
    eprintln!("boot 2 (UEFI): power-on to attested {second:.1?}");
    stop(gateway_a);

    // 2. Gateway B enrols the same machine: the same PCRs. It approves the variant of step 3
    // from the start, so that the image's digest alone does not flag it.
    let (image, digest) = variant(&build, root.path());
    let approved = [golden[0].clone(), digest];
    let gateway_b = vm::gateway(&link, &b, &qmp, &build.image, &approved, &trust);
    attested_after(&b.join("events.jsonl"), 0);
    assert_eq!(
        enrolled_pcrs(&b.join("events.jsonl")),
        pcrs,
        "another gateway, the same image: the same PCRs"
    );
    stop(gateway_b);

    // 3. One initramfs byte changed, in an image gateway B approves: the quote tells.
    let skip = read_events(&b.join("events.jsonl")).len();
    let _gateway_b = vm::gateway(&link, &b, &qmp, &image, &approved, &trust);
    let (_, violation) = wait_for_event(&b.join("events.jsonl"), skip, "violation", BOOT_TIMEOUT);
    assert_eq!(violation["violation"], "Report(TpmQuote)", "{violation}");
    let text = console();
    assert!(
        text.contains("Capsule-hpc:"),
        "the variant booted (its changed message): {text}"
    );
}

/// Stops a gateway in order (SIGTERM) and waits for it.
fn stop(mut gateway: Process) {
    let pid = rustix::process::Pid::from_child(&gateway.0);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let status = gateway.0.wait().expect("the gateway exits");
    assert!(status.success(), "{status}");
}
