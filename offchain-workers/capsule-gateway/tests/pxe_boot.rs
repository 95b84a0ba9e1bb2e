//! The HPC PXE-boots the network's image from its gateway and attests, in a QEMU machine under
//! TCG: the gateway (`capsule-gateway attest --boot-image`, with its boot server and dnsmasq)
//! in one network namespace, the machine (fixed SMBIOS serials, MAC and disk serial; its QMP
//! socket is the gateway's power control) on a tap bridged to the veth in another. Nothing
//! leaves the two namespaces (10.79.0.0/24 exists only inside them).
//!
//! One test, one machine, in order (each boot is ~30 s under TCG):
//! 1. power-on by the gateway → iPXE → the image's kernel and initramfs → the agent fetches its
//!    configuration and the image → enrolled and attested;
//! 2. the gateway restarts (SIGTERM leaves no dnsmasq behind): a second boot of the same machine
//!    is accepted against the enrolment (the same golden fields);
//! 3. a byte of the staged image changes on disk, then a device is hot-plugged over QMP: the
//!    device set is flagged, the next boot is refused (no DHCP, HTTP 503) and the HPC is off;
//! 4. the machine comes back with another SMBIOS serial: its fingerprint is flagged.
//!
//! Prints power-on to attested for each clean boot. Needs root, qemu-system-x86, ipxe-qemu,
//! dnsmasq and the built image (`pxe-image/build.sh`, run here when there is none).
mod common;

use std::time::{Duration, Instant};

use common::{
    hex,
    vm::{self, attested_after, dnsmasqs, http_status, qmp, Firmware, BOOT_TIMEOUT},
    wait_for_event, Link,
};

#[test]
fn the_hpc_pxe_boots_the_golden_image_attests_and_is_flagged_when_it_changes() {
    let build = vm::built_image();
    let digests = [hex(&build.golden.0)];
    let link = Link::new();
    vm::bridge(&link);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let events = dir.join("events.jsonl");
    let boot_dir = dir.join("boot");
    let qmp_socket = dir.join("qmp.sock");
    let (private, _) = capsule_channel::generate_static_key().expect("key");
    std::fs::write(dir.join("noise.key"), hex(&private)).expect("key");
    vm::disk(dir);
    let console = |serial: &str| {
        std::fs::read_to_string(dir.join(format!("console-{serial}.log"))).unwrap_or_default()
    };

    // 1. The first boot: enrolled, then attested.
    let qemu = vm::machine(&link, dir, "HPC-SN-0001", &Firmware::Bios);
    let gateway_process = vm::gateway(&link, dir, &qmp_socket, &build.image, &digests, &[]);
    let (first, accepted) = attested_after(&events, 0);
    let enrolled = common::read_events(&events)
        .into_iter()
        .find(|e| e["event"] == "enrolled")
        .expect("enrolled before the first acceptance");
    let text = console("HPC-SN-0001");
    assert!(text.contains("capsule-hpc: lease on"), "{text}");
    assert!(
        text.contains("boot configuration and image fetched"),
        "{text}"
    );
    eprintln!("boot 1 (enrolment): power-on to attested {first:.1?}");

    // 2. The gateway restarts; the machine boots again and matches its enrolment.
    let pid = rustix::process::Pid::from_child(&gateway_process.0);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let mut gateway_process = gateway_process;
    let status = gateway_process.0.wait().expect("the gateway exits");
    assert!(status.success(), "SIGTERM is an orderly stop: {status}");
    assert_eq!(dnsmasqs(&boot_dir), 0, "the gateway left dnsmasq running");
    let skip = common::read_events(&events).len();
    let _gateway_process = vm::gateway(&link, dir, &qmp_socket, &build.image, &digests, &[]);
    let (second, accepted_again) = attested_after(&events, skip);
    assert!(accepted_again > accepted);
    assert!(
        common::read_events(&events)[skip..]
            .iter()
            .all(|e| e["event"] != "violation" && e["event"] != "enrolled"),
        "the second boot matches the enrolment: {:?}",
        &common::read_events(&events)[skip..]
    );
    eprintln!("boot 2: power-on to attested {second:.1?}");
    assert_eq!(dnsmasqs(&boot_dir), 1);

    // 3. A changed byte in the staged image, then a hot-plugged device.
    let staged = boot_dir.join("image/initrd.zst");
    let mut bytes = std::fs::read(&staged).expect("staged initramfs");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&staged, bytes).expect("changing the staged copy (as root)");
    let skip = common::read_events(&events).len();
    qmp(
        dir,
        serde_json::json!({"execute": "device_add",
            "arguments": {"driver": "e1000", "id": "plugged", "mac": "52:54:00:aa:bb:99"}}),
    );
    let (at, violation) = wait_for_event(&events, skip, "violation", Duration::from_secs(60));
    assert_eq!(violation["violation"], "Report(DeviceSet)", "{violation}");
    let (_, refused) = wait_for_event(&events, at, "boot_refused", Duration::from_secs(30));
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("initrd.zst changed on disk"),
        "{refused}"
    );
    let (_, off) = wait_for_event(&events, at, "power", Duration::from_secs(30));
    assert_eq!(off["action"], "off", "{off}");
    assert_eq!(dnsmasqs(&boot_dir), 0, "no DHCP while the image is refused");
    for path in ["/boot.ipxe", "/vmlinuz", "/boot/config"] {
        assert!(
            http_status(&link, path).contains(" 503 "),
            "{path} is served while the image is refused"
        );
    }
    drop(_gateway_process);
    drop(qemu);

    // 4. The machine with another SMBIOS serial (the gateway stages the image afresh).
    let skip = common::read_events(&events).len();
    let _qemu = vm::machine(&link, dir, "HPC-SN-0002", &Firmware::Bios);
    let gateway_process = vm::gateway(&link, dir, &qmp_socket, &build.image, &digests, &[]);
    let (at, violation) = wait_for_event(&events, skip, "violation", BOOT_TIMEOUT);
    assert_eq!(violation["violation"], "Report(Fingerprint)", "{violation}");
    assert_eq!(
        violation["changed_sources"],
        serde_json::json!(["dmi/product_serial"]),
        "only the serial changed; enrolled {enrolled}"
    );
    // A gateway killed outright leaves no DHCP server on the link either (once the power-cycle
    // after the violation started the next boot).
    wait_for_event(&events, at, "power", Duration::from_secs(30));
    assert_eq!(dnsmasqs(&boot_dir), 1);
    drop(gateway_process);
    let deadline = Instant::now() + Duration::from_secs(5);
    while dnsmasqs(&boot_dir) > 0 {
        assert!(
            Instant::now() < deadline,
            "dnsmasq outlived a killed gateway"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
