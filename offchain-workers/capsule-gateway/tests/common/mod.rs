//! The attestation end-to-end tests' setup: a gateway and an HPC network namespace joined by a
//! veth pair (10.79.0.0/24 exists only inside them), the gateway and agent processes, the
//! prepared machine tree, and the events and power logs they write.
#![allow(dead_code)]
pub mod tasks;
pub mod vm;

use std::{
    ffi::OsStr,
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

pub const GATEWAY: &str = "10.79.0.1";
pub const PORT: u16 = 7000;
pub const PROXY_PORT: u16 = 7001;
pub const SALT: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The two namespaces, deleted on drop.
pub struct Link {
    pub gateway: String,
    pub hpc: String,
}

impl Link {
    pub fn new() -> Self {
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
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The agent with its test-only faults, built into its own target directory (for the host, as
/// the image's agent is: glibc, since tpm2-tss links dynamically), with TPM quotes (`tpm`) or
/// without.
pub fn agent_binary(tpm: bool) -> &'static Path {
    static PLAIN: OnceLock<PathBuf> = OnceLock::new();
    static WITH_TPM: OnceLock<PathBuf> = OnceLock::new();
    let cell = if tpm { &WITH_TPM } else { &PLAIN };
    cell.get_or_init(|| {
        let base = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let dir = base.join(if tpm { "agent-e2e-tpm" } else { "agent-e2e" });
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let features = if tpm {
            "fault-injection,tpm"
        } else {
            "fault-injection"
        };
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--locked",
                "--quiet",
                "-p",
                "capsule-agent",
            ])
            .args(["--features", features])
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&dir)
            .env(
                "RUSTFLAGS",
                format!("--remap-path-prefix={}=capsule", workspace.display()),
            )
            .status()
            .expect("cargo");
        assert!(status.success(), "building the agent");
        dir.join("release/capsule-agent")
    })
}

pub struct Setup {
    pub link: Link,
    pub dir: tempfile::TempDir,
    pub machine: Machine,
    pub gateway_public: String,
}

impl Setup {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn events(&self) -> Vec<Value> {
        read_events(&self.path("events.jsonl"))
    }

    pub fn power_cycles(&self) -> usize {
        std::fs::read_to_string(self.path("power.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Waits for an event after the first `skip` with `event` == `kind`.
    pub fn wait_for(&self, skip: usize, kind: &str, timeout: Duration) -> Value {
        wait_for_event(&self.path("events.jsonl"), skip, kind, timeout).1
    }

    pub fn gateway(&self, mean_interval_ms: u64) -> Process {
        self.gateway_with(mean_interval_ms, &[])
    }

    /// The gateway, with `extra` arguments.
    pub fn gateway_with(&self, mean_interval_ms: u64, extra: &[&OsStr]) -> Process {
        let digest = sha256(&std::fs::read(self.machine.path("boot/hpc.efi")).expect("boot image"));
        let child = gateway_command(&self.link, self.dir.path(), &hex(&digest))
            .arg("--power-log")
            .arg(self.path("power.log"))
            .args([
                "--mean-interval-ms",
                &mean_interval_ms.to_string(),
                "--answer-timeout-ms",
                "3000",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("gateway");
        let process = Process(child);
        self.wait_for(0, "listening", Duration::from_secs(10));
        process
    }

    pub fn agent(&self, port: u16, fault: Option<&str>) -> Process {
        self.agent_with(port, fault, None)
    }

    /// The agent with another boot secret than the gateway's.
    pub fn agent_with_secret(&self, port: u16, secret: &Path) -> Process {
        self.agent_full(port, None, None, secret)
    }

    /// The agent, with the TPM at `tpm` (a TCTI inside the HPC's namespace) when given.
    pub fn agent_with(&self, port: u16, fault: Option<&str>, tpm: Option<&str>) -> Process {
        self.agent_full(port, fault, tpm, &self.path("boot.secret"))
    }

    /// The agent with `extra` arguments.
    pub fn agent_args(&self, port: u16, extra: &[&OsStr]) -> Process {
        let mut command = self.agent_command(port, None, None, &self.path("boot.secret"));
        Process(command.args(extra).spawn().expect("agent"))
    }

    /// The session keys the agent announced on stdout: X25519, Ed25519.
    pub fn agent_keys(&self) -> ([u8; 32], [u8; 32]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(self.path("agent.out")).unwrap_or_default();
            if let Some(line) = text.lines().next() {
                let keys: Value = serde_json::from_str(line).expect("the agent's keys");
                let key = |name: &str| {
                    capsule_channel::key_from_hex(keys[name].as_str().expect("hex")).expect("key")
                };
                return (key("x25519"), key("ed25519"));
            }
            assert!(Instant::now() < deadline, "the agent announced no keys");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn agent_full(
        &self,
        port: u16,
        fault: Option<&str>,
        tpm: Option<&str>,
        secret: &Path,
    ) -> Process {
        Process(
            self.agent_command(port, fault, tpm, secret)
                .spawn()
                .expect("agent"),
        )
    }

    /// The agent's command; its stdout (the keys it announces) goes to `agent.out`.
    fn agent_command(
        &self,
        port: u16,
        fault: Option<&str>,
        tpm: Option<&str>,
        secret: &Path,
    ) -> Command {
        // nsenter, not `ip netns exec`: that also makes a mount namespace of its own, and the
        // engine would not see the scratch directories the agent mounts for its tasks.
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.link.hpc))
            .arg(agent_binary(tpm.is_some()))
            .args(["--gateway", &format!("{GATEWAY}:{port}")])
            .args(["--gateway-key", &self.gateway_public])
            .arg("--boot-secret-file")
            .arg(secret)
            .args(["--salt", SALT])
            .arg("--sources")
            .arg(self.path("sources.json"))
            .stdout(std::fs::File::create(self.path("agent.out")).expect("agent.out"));
        if let Some(fault) = fault {
            command.args(["--fault", fault]);
        }
        if let Some(tcti) = tpm {
            command.args(["--tpm", tcti, "--pcrs", "0,1,2,3,7,16"]);
        }
        command
    }
}

/// `capsule-gateway attest` in the gateway's namespace on GATEWAY:PORT, with the files every
/// test gives it in `dir` (Noise key, boot secret, root of trust, expectations, events),
/// enrolling, with `boot_digest` approved.
pub fn gateway_command(link: &Link, dir: &Path, boot_digest: &str) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &link.gateway])
        .arg(env!("CARGO_BIN_EXE_capsule-gateway"))
        .arg("attest")
        .args(["--listen", &format!("{GATEWAY}:{PORT}")]);
    for (flag, file) in [
        ("--noise-key-file", "noise.key"),
        ("--boot-secret-file", "boot.secret"),
        ("--root-of-trust", "root"),
        ("--expectations", "expectations.scale"),
        ("--events", "events.jsonl"),
    ] {
        command.arg(flag).arg(dir.join(file));
    }
    command
        .arg("--enrol")
        .args(["--boot-image-digest", boot_digest]);
    command
}

/// The gateway's events in `path` (JSON lines).
pub fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits for an event after the first `skip` with `event` == `kind`; returns its index too.
pub fn wait_for_event(path: &Path, skip: usize, kind: &str, timeout: Duration) -> (usize, Value) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = read_events(path)
            .into_iter()
            .enumerate()
            .skip(skip)
            .find(|(_, e)| e["event"] == kind)
        {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} event; events: {:?}",
            read_events(path)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn setup() -> Setup {
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
pub fn expect_violation(setup: &Setup, skip: usize, cycles: usize, reason: &str) -> Value {
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
pub fn proxy(link: &Link, garble: Arc<AtomicBool>, cut: Arc<AtomicBool>) {
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

pub fn percentile(values: &mut [u64], p: f64) -> u64 {
    values.sort_unstable();
    values[((values.len() as f64 - 1.0) * p).round() as usize]
}

pub fn rss_kib(pid: u32) -> u64 {
    // The agent is the process `ip netns exec` became.
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}
