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

use std::{
    io::{Read, Write},
    net::TcpStream,
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use capsule_boot_server::image::Build;
use common::{hex, ip, wait_for_event, Link, Process};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

const MAC: &str = "52:54:00:aa:bb:01";
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

fn built_image() -> Build {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("offchain-workers/target"))
        .join("pxe-image");
    Build::read(&out).unwrap_or_else(|_| {
        let status = Command::new(repo.join("pxe-image/build.sh"))
            .arg("--out")
            .arg(&out)
            .status()
            .expect("pxe-image/build.sh");
        assert!(status.success(), "building the HPC image");
        Build::read(&out).expect("the build's manifest")
    })
}

/// The HPC side of the link becomes a bridge of the veth and the machine's tap.
fn bridge(link: &Link) {
    let ns = link.hpc.as_str();
    ip(&["-n", ns, "addr", "flush", "dev", "h0"]);
    ip(&[
        "-n",
        ns,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "forward_delay",
        "0",
        "stp_state",
        "0",
    ]);
    ip(&["-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    for dev in ["h0", "tap0"] {
        ip(&["-n", ns, "link", "set", dev, "master", "br0"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    ip(&["-n", ns, "addr", "add", "10.79.0.2/24", "dev", "br0"]);
    ip(&["-n", ns, "link", "set", "br0", "up"]);
    // The prefix of the gateway's router advertisements (iPXE's IPv6 autoconfiguration).
    ip(&[
        "-n",
        &link.gateway,
        "-6",
        "addr",
        "add",
        "fd79::1/64",
        "dev",
        "g0",
        "nodad",
    ]);
}

/// The machine, held stopped (`-S`) until the gateway powers it on; a guest power-off leaves
/// it stopped too (`-no-shutdown`), as a machine without power that the gateway can cycle.
fn machine(link: &Link, dir: &Path, serial: &str) -> Process {
    let console = std::fs::File::create(dir.join(format!("console-{serial}.log"))).expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", &link.hpc, "qemu-system-x86_64"])
        .args(["-accel", "tcg", "-m", "768", "-smp", "1", "-nographic"])
        .args(["-S", "-no-shutdown"])
        .arg("-qmp")
        .arg(format!(
            "unix:{},server=on,wait=off",
            dir.join("qmp.sock").display()
        ))
        .args([
            "-smbios",
            &format!("type=1,manufacturer=TestLab,product=HPC-Node,serial={serial}"),
        ])
        .args(["-smbios", "type=2,serial=BOARD-0001"])
        .args([
            "-netdev",
            "tap,id=n0,ifname=tap0,script=no,downscript=no",
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={MAC}"),
        ])
        .arg("-drive")
        .arg(format!(
            "file={},if=none,id=d0,format=raw",
            dir.join("disk.img").display()
        ))
        .args(["-device", "virtio-blk-pci,drive=d0,serial=DISK-SN-42"])
        .args(["-boot", "n"])
        .stdin(Stdio::null())
        .stdout(console.try_clone().expect("log"))
        .stderr(console)
        .spawn()
        .expect("qemu-system-x86_64 (install qemu-system-x86 and ipxe-qemu)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("qmp.sock").exists() {
        assert!(Instant::now() < deadline, "QEMU made no QMP socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    Process(child)
}

fn gateway(link: &Link, dir: &Path, build: &Build) -> Process {
    let child = common::gateway_command(link, dir, &hex(&build.golden.0))
        .arg("--qmp")
        .arg(dir.join("qmp.sock"))
        .arg("--boot-image")
        .arg(&build.image)
        .args(["--hpc-interface", "g0", "--hpc-address", "10.79.0.1"])
        .args(["--dhcp-range", "10.79.0.50,10.79.0.60", "--hpc-mac", MAC])
        .arg("--boot-dir")
        .arg(dir.join("boot"))
        .args(["--mean-interval-ms", "1000", "--answer-timeout-ms", "10000"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("gateway.log"))
                .expect("log"),
        )
        .spawn()
        .expect("gateway");
    Process(child)
}

/// Runs `qmp` command `request` (JSON) on the machine's socket.
fn qmp(dir: &Path, request: serde_json::Value) -> serde_json::Value {
    let execute = request["execute"].as_str().expect("execute").to_owned();
    capsule_attestation::power::QmpPower {
        socket: dir.join("qmp.sock"),
    }
    .execute(&execute, request.get("arguments").cloned())
    .expect("QMP")
}

/// The dnsmasq processes serving from `boot_dir`.
fn dnsmasqs(boot_dir: &Path) -> usize {
    let needle = boot_dir.display().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .filter(|c| c.starts_with(b"dnsmasq") && String::from_utf8_lossy(c).contains(&needle))
        .count()
}

/// The HTTP status the boot server gives the HPC's side of the link for `path`.
fn http_status(link: &Link, path: &str) -> String {
    let ns = format!("/run/netns/{}", link.hpc);
    let request = format!("GET {path} HTTP/1.1\r\nHost: 10.79.0.1\r\nConnection: close\r\n\r\n");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(ns).expect("namespace");
        move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).expect("setns");
        let mut stream = TcpStream::connect(("10.79.0.1", 4280)).expect("boot server");
        stream.write_all(request.as_bytes()).expect("request");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    })
    .join()
    .expect("HTTP")
}

/// Waits for the gateway's next power-on after `skip` events and the first report it accepts
/// afterwards; returns the time between them and the index of the acceptance.
fn attested_after(events: &Path, skip: usize) -> (Duration, usize) {
    let (powered, _) = wait_for_event(events, skip, "power", Duration::from_secs(30));
    let on = Instant::now();
    let (accepted, _) = wait_for_event(events, powered, "accepted", BOOT_TIMEOUT);
    (on.elapsed(), accepted)
}

#[test]
fn the_hpc_pxe_boots_the_golden_image_attests_and_is_flagged_when_it_changes() {
    let build = built_image();
    let link = Link::new();
    bridge(&link);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let events = dir.join("events.jsonl");
    let boot_dir = dir.join("boot");
    let (private, _) = capsule_channel::generate_static_key().expect("key");
    std::fs::write(dir.join("noise.key"), hex(&private)).expect("key");
    let mut disk = vec![0u8; 8 << 20];
    disk.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]);
    std::fs::write(dir.join("disk.img"), disk).expect("disk");
    let console = |serial: &str| {
        std::fs::read_to_string(dir.join(format!("console-{serial}.log"))).unwrap_or_default()
    };

    // 1. The first boot: enrolled, then attested.
    let qemu = machine(&link, dir, "HPC-SN-0001");
    let gateway_process = gateway(&link, dir, &build);
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
    let _gateway_process = gateway(&link, dir, &build);
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
    let _qemu = machine(&link, dir, "HPC-SN-0002");
    let gateway_process = gateway(&link, dir, &build);
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
