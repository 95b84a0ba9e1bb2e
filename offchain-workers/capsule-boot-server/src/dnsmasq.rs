//! DHCP and TFTP on the HPC link through dnsmasq, the field's standard, run as a child process
//! bound to that link alone and started afresh (new lease file) before each boot. It hands out
//! one address range with a lease longer than the longest task, no router and no DNS server
//! (the HPC talks to its gateway only), and tells each client what to boot: BIOS firmware gets
//! iPXE's `undionly.kpxe`, UEFI firmware `ipxe.efi`, both by TFTP; iPXE itself gets the boot
//! server's script by HTTP.
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use capsule_primitives::agent::BOOT_SERVER_PORT;
use tokio::process::{Child, Command};
use tracing::info;

use crate::image::{IPXE_BIOS, IPXE_EFI};

/// Where the boot server's iPXE script is served.
pub const IPXE_SCRIPT_PATH: &str = "/boot.ipxe";

/// The HPC link's DHCP service.
#[derive(Clone, Debug)]
pub struct DhcpConfig {
    /// The gateway's interface on the HPC link: dnsmasq binds to it alone.
    pub interface: String,
    /// The gateway's address on it (the boot server's).
    pub server: Ipv4Addr,
    /// The addresses handed out, first to last, and their netmask.
    pub range: (Ipv4Addr, Ipv4Addr),
    pub netmask: Ipv4Addr,
    /// How long a lease lasts: longer than the longest task, so no renewal is ever needed.
    pub lease: Duration,
    /// Only this client (its MAC address) is answered, when set.
    pub hpc_mac: Option<String>,
    /// Sends IPv6 router advertisements (router lifetime 0: never a default route) for the
    /// prefix of the interface's own IPv6 address (a ULA /64). iPXE waits for IPv6
    /// autoconfiguration before it fetches its script: 18.5 s from power-on to the script
    /// without them, 5.5 s with (QEMU under TCG). The image's kernel has IPv6 off.
    pub router_advertisements: bool,
}

impl DhcpConfig {
    /// dnsmasq's arguments for this link, serving TFTP from `tftp_root` and writing its lease
    /// file, log and pid file into `state`.
    pub fn arguments(&self, tftp_root: &Path, state: &Path) -> Vec<String> {
        let (first, last) = self.range;
        let script = format!(
            "http://{}:{BOOT_SERVER_PORT}{IPXE_SCRIPT_PATH}",
            self.server
        );
        let mut args = vec![
            "--keep-in-foreground".into(),
            "--conf-file=/dev/null".into(),
            // No DNS service at all.
            "--port=0".into(),
            format!("--interface={}", self.interface),
            "--bind-interfaces".into(),
            "--except-interface=lo".into(),
            format!(
                "--dhcp-range={first},{last},{},{}s",
                self.netmask,
                self.lease.as_secs().max(120)
            ),
            "--dhcp-authoritative".into(),
            // No address-in-use ping: it only delays the offer by 3 s on this private link.
            "--no-ping".into(),
            // No router and no DNS server in the lease.
            "--dhcp-option=option:router".into(),
            "--dhcp-option=option:dns-server".into(),
            format!("--dhcp-leasefile={}", state.join("leases").display()),
            "--enable-tftp".into(),
            format!("--tftp-root={}", tftp_root.display()),
            "--tftp-no-fail".into(),
            "--dhcp-match=set:ipxe,175".into(),
            "--dhcp-match=set:efi64,option:client-arch,7".into(),
            "--dhcp-match=set:efi64,option:client-arch,9".into(),
            format!("--dhcp-boot=tag:ipxe,{script}"),
            format!("--dhcp-boot=tag:!ipxe,tag:efi64,{IPXE_EFI}"),
            format!("--dhcp-boot=tag:!ipxe,tag:!efi64,{IPXE_BIOS}"),
            "--log-dhcp".into(),
            format!("--log-facility={}", state.join("dnsmasq.log").display()),
            format!("--pid-file={}", state.join("dnsmasq.pid").display()),
            "--user=root".into(),
            // Not Debian's default group "dip": a change of credentials would clear the
            // parent-death signal that ties dnsmasq to the gateway.
            "--group=root".into(),
        ];
        if self.router_advertisements {
            args.push("--enable-ra".into());
            args.push(format!(
                "--dhcp-range=::,constructor:{},ra-only",
                self.interface
            ));
            args.push(format!("--ra-param={},60,0", self.interface));
        }
        if let Some(mac) = &self.hpc_mac {
            args.push(format!("--dhcp-host={mac},set:hpc"));
            args.push("--dhcp-ignore=tag:!known".into());
        }
        args
    }
}

/// The child gets SIGKILL when the thread that started it ends, so a killed gateway leaves no
/// DHCP server on the link ([`Dnsmasq`]'s drop covers only an orderly exit).
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes one system call
    // (prctl), which is async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}

/// Why dnsmasq could not serve.
#[derive(Debug, thiserror::Error)]
pub enum DnsmasqError {
    #[error("cannot start dnsmasq ({program}): {source}; install Debian's dnsmasq-base")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dnsmasq exited at start ({status}); its log: {log}")]
    Exited { status: String, log: String },
    #[error("dnsmasq did not report its DHCP service within {0:?}; its log: {1}")]
    NotReady(Duration, String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running dnsmasq child; killed when dropped.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Child,
    state: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq with a fresh lease file in `state` and waits until it serves.
    pub async fn start(
        program: &Path,
        config: &DhcpConfig,
        tftp_root: &Path,
        state: &Path,
    ) -> Result<Self, DnsmasqError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| DnsmasqError::Io { path, source }
        };
        std::fs::create_dir_all(state).map_err(io(state))?;
        for file in ["leases", "dnsmasq.log", "dnsmasq.pid"] {
            let path = state.join(file);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
                _ => {}
            }
        }
        let mut command = Command::new(program);
        die_with_parent(&mut command);
        let child = command
            .args(config.arguments(tftp_root, state))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| DnsmasqError::Spawn {
                program: program.to_owned(),
                source,
            })?;
        let mut dnsmasq = Self {
            child,
            state: state.to_owned(),
        };
        let limit = Duration::from_secs(10);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = dnsmasq.child.try_wait().map_err(io(state))? {
                return Err(DnsmasqError::Exited {
                    status: status.to_string(),
                    log: dnsmasq.log(),
                });
            }
            if dnsmasq.log().contains("TFTP root is") {
                info!(interface = %config.interface, "dnsmasq serving DHCP and TFTP");
                return Ok(dnsmasq);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DnsmasqError::NotReady(limit, dnsmasq.log()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What dnsmasq logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.join("dnsmasq.log")).unwrap_or_default()
    }

    /// Stops it and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
