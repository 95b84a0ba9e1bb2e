//! The agent and the attestation server as real processes on the two ends of a
//! network-namespace pair this test creates (gateway 10.79.0.1, HPC 10.79.0.2; the addresses
//! exist only inside them). The HPC's measured sources are a prepared tree
//! (`capsule_measure::fixture`). A clean machine enrols and attests; a changed module set, a
//! new PCI device, a changed boot image, a changed fingerprint source, a replayed report, a
//! report signed by the wrong key, a garbled and a dropped channel, and a second agent with
//! another static key are each detected with their reason, and the HPC is power-cycled (the
//! recording power double's log). Prints the challenge-to-verified latency, the
//! violation-to-power-cycle latency, and the agent's RSS and size.
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

use capsule_measure::fixture::Machine;
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use serde_json::Value;

const GATEWAY: &str = "10.79.0.1";
const PORT: u16 = 7000;
const PROXY_PORT: u16 = 7001;
const SALT: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The two namespaces, deleted on drop.
struct Link {
    gateway: String,
    hpc: String,
}

impl Link {
    fn new() -> Self {
        let id = std::process::id();
        let link = Self {
            gateway: format!("cat{id}g"),
            hpc: format!("cat{id}h"),
        };
        for ns in [&link.gateway, &link.hpc] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n",
            &link.gateway,
            "link",
            "add",
            "g0",
            "type",
            "veth",
            "peer",
            "name",
            "h0",
            "netns",
            &link.hpc,
        ]);
        for (ns, dev, addr) in [
            (&link.gateway, "g0", "10.79.0.1/24"),
            (&link.hpc, "h0", "10.79.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        link
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.gateway, &self.hpc] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The agent, built static (musl) with its test-only faults, into its own target directory.
fn agent_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let base = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let dir = base.join("agent-e2e");
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--locked",
                "--quiet",
                "-p",
                "capsule-agent",
                "--features",
                "fault-injection",
                "--target",
                "x86_64-unknown-linux-musl",
            ])
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&dir)
            .env(
                "RUSTFLAGS",
                format!(
                    "-C target-feature=+crt-static --remap-path-prefix={}=capsule",
                    workspace.display()
                ),
            )
            .status()
            .expect("cargo");
        assert!(status.success(), "building the agent");
        dir.join("x86_64-unknown-linux-musl/release/capsule-agent")
    })
}

struct Setup {
    link: Link,
    dir: tempfile::TempDir,
    machine: Machine,
    gateway_public: String,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn power_cycles(&self) -> usize {
        std::fs::read_to_string(self.path("power.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Waits for an event after the first `skip` with `event` == `kind`.
    fn wait_for(&self, skip: usize, kind: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self
                .events()
                .into_iter()
                .skip(skip)
                .find(|e| e["event"] == kind)
            {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event; events: {:?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn gateway(&self, mean_interval_ms: u64) -> Process {
        let binary = env!("CARGO_BIN_EXE_capsule-gateway");
        let boot_digest = {
            use std::fmt::Write as _;
            let bytes = std::fs::read(self.machine.path("boot/hpc.efi")).expect("boot image");
            let digest = sha256(&bytes);
            digest.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        let child = Command::new("ip")
            .args(["netns", "exec", &self.link.gateway, binary, "attest"])
            .args(["--listen", &format!("{GATEWAY}:{PORT}")])
            .arg("--noise-key-file")
            .arg(self.path("noise.key"))
            .arg("--boot-secret-file")
            .arg(self.path("boot.secret"))
            .arg("--root-of-trust")
            .arg(self.path("root"))
            .arg("--expectations")
            .arg(self.path("expectations.scale"))
            .arg("--enrol")
            .args(["--boot-image-digest", &boot_digest])
            .arg("--power-log")
            .arg(self.path("power.log"))
            .arg("--events")
            .arg(self.path("events.jsonl"))
            .args([
                "--mean-interval-ms",
                &mean_interval_ms.to_string(),
                "--answer-timeout-ms",
                "3000",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("gateway");
        let process = Process(child);
        self.wait_for(0, "listening", Duration::from_secs(10));
        process
    }

    fn agent(&self, port: u16, fault: Option<&str>) -> Process {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.link.hpc])
            .arg(agent_binary())
            .args(["--gateway", &format!("{GATEWAY}:{port}")])
            .args(["--gateway-key", &self.gateway_public])
            .arg("--boot-secret-file")
            .arg(self.path("boot.secret"))
            .args(["--salt", SALT])
            .arg("--sources")
            .arg(self.path("sources.json"))
            .stdout(Stdio::null());
        if let Some(fault) = fault {
            command.args(["--fault", fault]);
        }
        Process(command.spawn().expect("agent"))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn setup() -> Setup {
    let link = Link::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let machine = Machine::create(&dir.path().join("machine"));
    std::fs::write(
        dir.path().join("sources.json"),
        serde_json::to_vec(&machine.sources()).expect("json"),
    )
    .expect("sources");
    let (private, public) = capsule_channel::generate_static_key().expect("key");
    std::fs::write(dir.path().join("noise.key"), hex(&private)).expect("key");
    std::fs::write(dir.path().join("boot.secret"), hex(&[0x42; 32])).expect("secret");
    Setup {
        link,
        dir,
        machine,
        gateway_public: hex(&public),
    }
}

/// Expects the next violation after `skip` events to name `reason`, with one more power-cycle.
fn expect_violation(setup: &Setup, skip: usize, cycles: usize, reason: &str) -> Value {
    let violation = setup.wait_for(skip, "violation", Duration::from_secs(20));
    let text = violation["violation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.contains(reason), "expected {reason}, got {text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while setup.power_cycles() <= cycles {
        assert!(Instant::now() < deadline, "no power-cycle for {reason}");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("detected: {text}");
    violation
}

/// A TCP proxy inside the gateway's namespace from PROXY_PORT to PORT that flips a byte of
/// the agent's traffic once `garble` is set, or cuts both sides once `cut` is.
fn proxy(link: &Link, garble: Arc<AtomicBool>, cut: Arc<AtomicBool>) {
    let path = format!("/run/netns/{}", link.gateway);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("namespace");
        move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).expect("setns");
        let listener = TcpListener::bind((GATEWAY, PROXY_PORT)).expect("bind");
        ready_tx.send(()).expect("ready");
        for agent in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect((GATEWAY, PORT)) else {
                continue;
            };
            let (mut agent_r, mut server_w) = (
                agent.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let (garble, cut) = (garble.clone(), cut.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = agent_r.read(&mut buf) {
                    if n == 0 || cut.load(Ordering::SeqCst) {
                        break;
                    }
                    if garble.swap(false, Ordering::SeqCst) {
                        buf[n - 1] ^= 0x40;
                    }
                    if server_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server_w.shutdown(std::net::Shutdown::Both);
                let _ = agent_r.shutdown(std::net::Shutdown::Both);
            });
            let (mut server_r, mut agent_w) = (server, agent);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_r, &mut agent_w);
                let _ = agent_w.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("proxy up");
}

fn percentile(values: &mut [u64], p: f64) -> u64 {
    values.sort_unstable();
    values[((values.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    // The agent is the process `ip netns exec` became.
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn the_server_attests_a_clean_hpc_and_detects_each_violation() {
    let setup = setup();
    let _gateway = setup.gateway(50);

    // A clean machine enrols, then attests again and again.
    let agent = setup.agent(PORT, None);
    setup.wait_for(0, "enrolled", Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup
        .events()
        .iter()
        .filter(|e| e["event"] == "accepted")
        .count()
        < 100
    {
        assert!(
            Instant::now() < deadline,
            "too few accepted reports: {:?}",
            setup.events().last()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss = rss_kib(agent.0.id());
    let mut latencies: Vec<u64> = setup
        .events()
        .iter()
        .filter_map(|e| e["latency_us"].as_u64())
        .collect();
    let (p50, p99) = (
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99),
    );
    let size = std::fs::metadata(agent_binary())
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "challenge-to-verified over {} reports: p50 {:.2} ms, p99 {:.2} ms; agent RSS {rss} KiB; agent binary (static musl, release) {size} bytes",
        latencies.len(),
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0
    );
    assert_eq!(
        setup.power_cycles(),
        0,
        "a clean machine is never power-cycled"
    );

    let mut power_latencies = Vec::new();
    let mut run_violation = |change: &dyn Fn(),
                             undo: &dyn Fn(),
                             fault: Option<&str>,
                             port: u16,
                             reason: &str,
                             agent: Option<Process>| {
        let skip = setup.events().len();
        let cycles = setup.power_cycles();
        let agent = agent.unwrap_or_else(|| setup.agent(port, fault));
        change();
        let violation = expect_violation(&setup, skip, cycles, reason);
        if let Some(us) = violation["power_latency_us"].as_u64() {
            power_latencies.push(us);
        }
        drop(agent);
        undo();
        violation
    };

    // The clean agent's own session: a module loaded.
    let modules = || {
        setup
            .machine
            .set_modules(&["virtio_net", "virtio_blk", "overlay", "usb_storage"])
    };
    let clean_modules = || {
        setup
            .machine
            .set_modules(&["virtio_net", "virtio_blk", "overlay"])
    };
    run_violation(
        &modules,
        &clean_modules,
        None,
        PORT,
        "ModuleSet",
        Some(agent),
    );

    // Each following case: a fresh boot (a new agent), then the change.
    let pci = || {
        setup
            .machine
            .add_pci("0000:00:05.0", 0x10de, 0x2204, 0x030000)
    };
    let unplug = || {
        std::fs::remove_dir_all(setup.machine.path("sys/bus/pci/devices/0000:00:05.0"))
            .expect("unplug")
    };
    run_violation(&pci, &unplug, None, PORT, "DeviceSet", None);

    let boot = setup.machine.path("boot/hpc.efi");
    let original = std::fs::read(&boot).expect("boot image");
    let change_boot = || setup.machine.change_boot_image();
    let restore_boot = || std::fs::write(&boot, &original).expect("restore");
    run_violation(&change_boot, &restore_boot, None, PORT, "BootImage", None);

    let serial = || setup.machine.set_dmi("product_serial", "HPC-SN-0002");
    let restore_serial = || setup.machine.set_dmi("product_serial", "HPC-SN-0001");
    let violation = run_violation(&serial, &restore_serial, None, PORT, "Fingerprint", None);
    assert_eq!(
        violation["changed_sources"],
        serde_json::json!(["dmi/product_serial"])
    );

    let nothing = || {};
    run_violation(
        &nothing,
        &nothing,
        Some("replay-first-report"),
        PORT,
        "WrongNonce",
        None,
    );
    run_violation(
        &nothing,
        &nothing,
        Some("wrong-signing-key"),
        PORT,
        "BadReportSignature",
        None,
    );

    // The channel: garbled on the way, then cut, through a proxy in the gateway's namespace.
    let (garble, cut) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    proxy(&setup.link, garble.clone(), cut.clone());
    let skip = setup.events().len();
    let through = setup.agent(PROXY_PORT, None);
    setup.wait_for(skip, "accepted", Duration::from_secs(20));
    let garbling = || garble.store(true, Ordering::SeqCst);
    run_violation(
        &garbling,
        &nothing,
        None,
        PROXY_PORT,
        "does not decrypt",
        Some(through),
    );

    let skip = setup.events().len();
    let through = setup.agent(PROXY_PORT, None);
    setup.wait_for(skip, "accepted", Duration::from_secs(20));
    let cutting = || cut.store(true, Ordering::SeqCst);
    run_violation(
        &cutting,
        &nothing,
        None,
        PROXY_PORT,
        "closed",
        Some(through),
    );
    cut.store(false, Ordering::SeqCst);

    // A second agent with this boot's secret but another static key.
    let skip = setup.events().len();
    let first = setup.agent(PORT, None);
    setup.wait_for(skip, "accepted", Duration::from_secs(20));
    let second = || {
        let intruder = setup.agent(PORT, None);
        std::thread::sleep(Duration::from_millis(500));
        drop(intruder);
    };
    run_violation(
        &second,
        &nothing,
        None,
        PORT,
        "static key changed",
        Some(first),
    );

    let p99 = percentile(&mut power_latencies, 0.99);
    eprintln!(
        "violation-to-power-cycle over {} violations: p99 {:.3} ms",
        power_latencies.len(),
        p99 as f64 / 1000.0
    );
}
