//! `capsule-gateway`: the gateway daemon. Its `attest` command runs the attestation server for
//! the gateway's HPC (ARCHITECTURE, flows 2-3): it accepts only its HPC's agent (the boot
//! secret, and the first static key of the boot pinned), enrols the HPC at its first clean boot
//! when asked, challenges at unpredictable intervals, countersigns accepted reports with the
//! gateway's root of trust, and on a violation stops the task and power-cycles the HPC. Each
//! event is a JSON line in `--events`.
//!
//! With `--boot-image`, the gateway also runs the HPC's boot server on the link (DHCP and TFTP
//! through dnsmasq, HTTP for the image and the boot's one-time configuration), powers the HPC
//! on into a fresh boot at start, and starts a new boot before every power-cycle.
mod inbox;
mod power;

use std::{
    collections::BTreeSet,
    io::Write,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use capsule_attestation::{
    power::{IpmiPower, PowerAction, PowerControl, QmpPower, RecordingPower},
    server::{self, Event, NoTask, Server, ServerConfig, Violation, ViolationRecord},
    task::TaskJob,
    Expectations,
};
use capsule_channel::{Channel, ChannelError, Schedule};
use capsule_primitives::{agent::MAX_ATTESTATION_MESSAGE, measurement::MeasurementDigest};
use capsule_root_of_trust::software::SoftwareRootOfTrust;
use clap::{Parser, Subcommand};
use codec::{Decode, Encode};
use tracing::{info, warn};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the attestation server for this gateway's HPC.
    Attest(AttestArgs),
}

#[derive(clap::Args, Debug)]
struct AttestArgs {
    /// Address on the HPC link to listen on.
    #[arg(long)]
    listen: String,
    /// File holding the gateway's Noise static private key (64 hex digits).
    #[arg(long)]
    noise_key_file: PathBuf,
    /// File holding the HPC's current boot secret (64 hex digits).
    #[arg(long)]
    boot_secret_file: PathBuf,
    /// Directory of the software root of trust (dev and local networks only) that
    /// countersigns reports.
    #[arg(long)]
    root_of_trust: PathBuf,
    /// The HPC's enrolled expectations (SCALE). Missing: enrol from the first report with
    /// --enrol.
    #[arg(long)]
    expectations: PathBuf,
    /// Enrol the HPC from its first report when --expectations does not exist yet.
    #[arg(long)]
    enrol: bool,
    /// An approved HPC boot image digest (64 hex digits); repeat for several.
    #[arg(long = "boot-image-digest", required = true)]
    boot_images: Vec<String>,
    /// A directory of `NAME.task.json` files, each run once on the HPC over the agent channel
    /// (results written beside them): the local task source until tasks come from the chain.
    #[arg(long)]
    task_inbox: Option<PathBuf>,
    /// The gateway's account (64 hex digits), inside each countersignature.
    #[arg(
        long,
        default_value = "0000000000000000000000000000000000000000000000000000000000000000"
    )]
    gateway_account: String,
    #[command(flatten)]
    power: PowerArgs,
    #[command(flatten)]
    boot: BootArgs,
    /// JSON lines of accepted reports and violations.
    #[arg(long)]
    events: PathBuf,
    /// Mean time between challenges, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    mean_interval_ms: u64,
    /// How long an answer may take, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    answer_timeout_ms: u64,
    /// Disk blocks sampled per challenge.
    #[arg(long, default_value_t = 4)]
    disk_samples: u32,
    /// A CA certificate (PEM or DER) EK certificates may chain to; repeat for several. With
    /// it, the HPC's TPM is established at every boot and its quotes are required.
    #[cfg(feature = "tpm")]
    #[arg(long = "tpm-ca")]
    tpm_cas: Vec<PathBuf>,
    /// An intermediate CA certificate for EK certificates; repeat for several.
    #[cfg(feature = "tpm")]
    #[arg(long = "tpm-intermediate")]
    tpm_intermediates: Vec<PathBuf>,
    /// The PCRs (SHA-256 bank) a TPM HPC's quotes must cover, comma-separated, increasing.
    /// The default: firmware and its configuration (0-3), the boot applications UEFI loaded
    /// (4: iPXE, the image), Secure Boot (7), the initramfs (9, by the kernel's EFI stub), the
    /// kernel command line (12, by systemd's stub) and PCR 16.
    #[cfg(feature = "tpm")]
    #[arg(long, default_value = "0,1,2,3,4,7,9,12,16", value_delimiter = ',')]
    tpm_pcrs: Vec<u8>,
}

/// The HPC's power: one of the three.
#[derive(clap::Args, Debug)]
struct PowerArgs {
    /// The HPC is a QEMU machine with this QMP socket (tests; start it with `-S`).
    #[arg(long, conflicts_with_all = ["power_log", "ipmi_host"])]
    qmp: Option<PathBuf>,
    /// The HPC's BMC (IPMI 2.0 over LAN through Debian's ipmitool), with --ipmi-user and
    /// --ipmi-password-file.
    #[arg(long, conflicts_with = "power_log", requires_all = ["ipmi_user", "ipmi_password_file"])]
    ipmi_host: Option<String>,
    #[arg(long)]
    ipmi_user: Option<String>,
    #[arg(long)]
    ipmi_password_file: Option<PathBuf>,
    /// Only records power actions, one line each in this file (tests without a machine).
    #[arg(long)]
    power_log: Option<PathBuf>,
}

impl PowerArgs {
    fn backend(&self) -> anyhow::Result<Arc<dyn PowerControl>> {
        Ok(match (&self.qmp, &self.ipmi_host, &self.power_log) {
            (Some(socket), _, _) => Arc::new(QmpPower {
                socket: socket.clone(),
            }),
            (_, Some(host), _) => Arc::new(IpmiPower {
                host: host.clone(),
                user: self.ipmi_user.clone().unwrap_or_default(),
                password_file: self.ipmi_password_file.clone().unwrap_or_default(),
            }),
            (_, _, Some(log)) => Arc::new(RecordingPower::with_log(log.clone())),
            _ => anyhow::bail!("name the HPC's power: --qmp, --ipmi-host or --power-log"),
        })
    }
}

/// The HPC's boot server on the link.
#[derive(clap::Args, Debug)]
struct BootArgs {
    /// Serve the HPC its boot from this unified kernel image (pxe-image/build.sh's boot.efi);
    /// its digest must be one of --boot-image-digest.
    #[arg(long, requires_all = ["hpc_interface", "hpc_address", "dhcp_range", "boot_dir"])]
    boot_image: Option<PathBuf>,
    /// The gateway's interface on the HPC link.
    #[arg(long)]
    hpc_interface: Option<String>,
    /// The gateway's IPv4 address on the HPC link (the boot server's).
    #[arg(long)]
    hpc_address: Option<Ipv4Addr>,
    /// The addresses DHCP hands out: FIRST,LAST.
    #[arg(long, value_delimiter = ',', num_args = 1)]
    dhcp_range: Vec<Ipv4Addr>,
    #[arg(long, default_value = "255.255.255.0")]
    netmask: Ipv4Addr,
    /// The lease, in hours: longer than the longest task.
    #[arg(long, default_value_t = 24)]
    lease_hours: u64,
    /// Answer only this MAC address.
    #[arg(long)]
    hpc_mac: Option<String>,
    /// No IPv6 router advertisements on the link. With them (for the prefix of the
    /// interface's IPv6 address, a ULA /64), iPXE starts its boot ~13 s sooner.
    #[arg(long)]
    no_router_advertisements: bool,
    /// The boot server's own directory: the staged image, dnsmasq's leases and log, the
    /// HPC's fingerprint salt.
    #[arg(long)]
    boot_dir: Option<PathBuf>,
    /// Where iPXE's binaries are (Debian's ipxe package).
    #[arg(long, default_value = "/usr/lib/ipxe")]
    ipxe_dir: PathBuf,
    /// The dnsmasq binary (Debian's dnsmasq-base).
    #[arg(long, default_value = "dnsmasq")]
    dnsmasq: PathBuf,
}

fn hex32(text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    capsule_channel::key_from_hex(text).with_context(|| what.to_owned())
}

/// The events file.
#[derive(Clone)]
struct Events(Arc<Mutex<std::fs::File>>);

impl Events {
    fn write(&self, value: serde_json::Value) {
        if let Ok(mut file) = self.0.lock() {
            let _ = writeln!(file, "{value}");
            let _ = file.flush();
        }
    }

    fn violation(&self, record: &ViolationRecord) {
        self.write(serde_json::json!({
            "event": "violation",
            "violation": format!("{:?}", record.violation),
            "changed_sources": record.changed_sources,
            "power_latency_us": record
                .powered_at
                .map(|at| at.saturating_duration_since(record.detected_at).as_micros() as u64),
        }));
    }
}

struct State {
    /// The static key of this boot's agent, pinned at its first authenticated message.
    pinned: Option<[u8; 32]>,
    /// Counts power-cycles: a session of an earlier boot is not counted again.
    generation: u64,
    expectations: Option<Arc<Expectations>>,
}

struct Shared {
    args: AttestArgs,
    /// Pinned EK CAs: HPCs with TPMs are attested through them.
    tpm_trust: Option<server::TpmTrust>,
    noise_private: [u8; 32],
    boot_images: BTreeSet<MeasurementDigest>,
    /// Tasks from the inbox, for the session that relays them.
    tasks: Option<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<TaskJob>>>,
    /// The Authenticode SHA-256 of the image this gateway's boot server serves: what UEFI
    /// firmware measures into PCR 4 when it loads it.
    measured_image: Option<[u8; 32]>,
    root: SoftwareRootOfTrust,
    power: power::PowerRequests,
    events: Events,
    state: Mutex<State>,
    config: ServerConfig,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let Command::Attest(args) = Cli::parse().command;
    let noise_private = hex32(
        &std::fs::read_to_string(&args.noise_key_file)
            .with_context(|| format!("reading {}", args.noise_key_file.display()))?,
        "the Noise key",
    )?;
    // Checked now unless this gateway's boot server writes it; read again for every
    // connection (the boot server renews it per boot).
    if args.boot.boot_image.is_none() {
        hex32(
            &std::fs::read_to_string(&args.boot_secret_file)
                .with_context(|| format!("reading {}", args.boot_secret_file.display()))?,
            "the boot secret",
        )?;
    }
    let power_backend = args.power.backend()?;
    let boot_images = args
        .boot_images
        .iter()
        .map(|d| hex32(d, "--boot-image-digest").map(MeasurementDigest))
        .collect::<anyhow::Result<BTreeSet<_>>>()?;
    let expectations = match std::fs::read(&args.expectations) {
        Ok(bytes) => Some(Arc::new(
            Expectations::decode(&mut bytes.as_slice()).with_context(|| {
                format!(
                    "{} is not an expectations file",
                    args.expectations.display()
                )
            })?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.enrol => None,
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "reading {} (pass --enrol to enrol the HPC)",
                    args.expectations.display()
                )
            })
        }
    };
    let config = ServerConfig {
        mean_interval: Duration::from_millis(args.mean_interval_ms),
        answer_timeout: Duration::from_millis(args.answer_timeout_ms),
        disk_samples: args.disk_samples,
        gateway: hex32(&args.gateway_account, "--gateway-account")?,
    };
    let events = Events(Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.events)
            .with_context(|| format!("opening {}", args.events.display()))?,
    )));
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    #[cfg(feature = "tpm")]
    let tpm_trust = if args.tpm_cas.is_empty() {
        None
    } else {
        let read = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
                .collect::<anyhow::Result<Vec<_>>>()
        };
        Some(server::TpmTrust {
            roots: read(&args.tpm_cas)?,
            intermediates: read(&args.tpm_intermediates)?,
            pcrs: args.tpm_pcrs.clone(),
        })
    };
    #[cfg(not(feature = "tpm"))]
    let tpm_trust = None;
    let boot_server = match &args.boot.boot_image {
        Some(image) => Some(
            start_boot_server(
                &args,
                image,
                &boot_images,
                &noise_private,
                listener.local_addr()?,
            )
            .await?,
        ),
        None => None,
    };
    let measured_image = boot_server
        .as_ref()
        .map(|server| server.image().authenticode());
    let power = power::controller(power_backend, boot_server.clone(), events.clone());
    if boot_server.is_some() {
        // Powered on into a fresh boot: whatever ran before is not this boot.
        power.act(PowerAction::Cycle)?;
    }
    let tasks = args.task_inbox.clone().map(|inbox| {
        let (jobs, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(inbox::watch(inbox, jobs, events.clone()));
        tokio::sync::Mutex::new(receiver)
    });
    let shared = Arc::new(Shared {
        tasks,
        tpm_trust,
        root: SoftwareRootOfTrust::open_or_create(&args.root_of_trust)?,
        power,
        noise_private,
        boot_images,
        measured_image,
        events,
        state: Mutex::new(State {
            pinned: None,
            generation: 0,
            expectations,
        }),
        config,
        args,
    });
    shared
        .events
        .write(serde_json::json!({"event": "listening"}));
    info!(listen = %shared.args.listen, "attestation server up");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            info!(%peer, "agent connecting");
            if let Err(error) = session(&shared, stream).await {
                warn!(%error, "session ended");
            }
        });
    }
    // No DHCP or boot service is left on the link.
    if let Some(boot) = boot_server {
        boot.stop().await;
    }
    info!("stopped");
    Ok(())
}

/// Measured boot, where this gateway served the image to a TPM HPC: the firmware's event log
/// bears out the PCRs the boot is held to and shows the image loaded (a `measured_boot` event).
async fn measured_boot<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    channel: &mut Channel<S>,
    shared: &Shared,
    expectations: &capsule_attestation::Expectations,
) -> Result<(), Violation> {
    let (Some(tpm), Some(image)) = (&expectations.tpm, shared.measured_image) else {
        return Ok(());
    };
    let boot = server::measured_boot(channel, &shared.config, &tpm.pcrs, &[image]).await?;
    shared.events.write(serde_json::json!({
        "event": "measured_boot",
        "image": hex::encode(boot.image),
        "applications": boot.applications.iter().map(hex::encode).collect::<Vec<_>>(),
    }));
    Ok(())
}

/// Stages the image, and serves HTTP on the link; dnsmasq starts with the first boot.
async fn start_boot_server(
    args: &AttestArgs,
    image: &Path,
    approved: &BTreeSet<MeasurementDigest>,
    noise_private: &[u8; 32],
    attestation: std::net::SocketAddr,
) -> anyhow::Result<Arc<capsule_boot_server::BootServer>> {
    use capsule_boot_server::{BootServer, BootServerConfig, DhcpConfig, StagedImage};
    let boot = &args.boot;
    let (Some(interface), Some(address), [first, last], Some(dir)) = (
        &boot.hpc_interface,
        boot.hpc_address,
        boot.dhcp_range.as_slice(),
        &boot.boot_dir,
    ) else {
        anyhow::bail!(
            "--boot-image needs --hpc-interface, --hpc-address, --dhcp-range FIRST,LAST and --boot-dir"
        );
    };
    let digest = capsule_boot_server::image::image_digest(image)?;
    anyhow::ensure!(
        approved.contains(&digest),
        "{} (sha256 {}) is not an approved boot image: pass its digest with --boot-image-digest",
        image.display(),
        hex::encode(digest.0)
    );
    // Staging creates `dir` too; dnsmasq's start creates its state directory.
    let staged = StagedImage::stage(image, digest, &boot.ipxe_dir, &dir.join("image"))
        .with_context(|| format!("staging {}", image.display()))?;
    let config = BootServerConfig {
        dhcp: DhcpConfig {
            interface: interface.clone(),
            server: address,
            range: (*first, *last),
            netmask: boot.netmask,
            lease: Duration::from_secs(boot.lease_hours.saturating_mul(3600)),
            hpc_mac: boot.hpc_mac.clone(),
            router_advertisements: !boot.no_router_advertisements,
        },
        dnsmasq: boot.dnsmasq.clone(),
        state_dir: dir.join("dhcp"),
        attestation_port: attestation.port(),
        gateway_key: capsule_channel::public_key(noise_private),
        fingerprint_salt: fingerprint_salt(&dir.join("fingerprint-salt"))?,
        boot_secret_file: args.boot_secret_file.clone(),
    };
    let server = Arc::new(BootServer::new(staged, config));
    let http = (address, capsule_primitives::agent::BOOT_SERVER_PORT);
    let listener = tokio::net::TcpListener::bind(http)
        .await
        .with_context(|| format!("listening on {address}:{} for the boot server", http.1))?;
    tokio::spawn(
        server
            .clone()
            .serve_http(listener, tokio_util::sync::CancellationToken::new()),
    );
    info!(%address, interface, "boot server up");
    Ok(server)
}

/// The HPC's fingerprint salt: made once (0600), then kept, since the enrolled fingerprint
/// depends on it.
fn fingerprint_salt(path: &Path) -> anyhow::Result<[u8; 32]> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(text) => hex32(
            &text,
            &format!("the fingerprint salt in {}", path.display()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut salt = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
            std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut file| file.write_all(hex::encode(salt).as_bytes()))
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(salt)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A violation found by the gateway itself (not by the server loop): power-cycles the HPC,
/// writes the record, and starts a new boot generation.
fn record(shared: &Shared, violation: Violation) -> ViolationRecord {
    let detected_at = std::time::Instant::now();
    let powered_at = server::stop_and_power_cycle(&NoTask, &shared.power);
    let record = ViolationRecord {
        violation,
        report: None,
        changed_sources: Vec::new(),
        detected_at,
        powered_at,
    };
    shared.events.violation(&record);
    new_boot(shared);
    record
}

/// The HPC was power-cycled: its next boot makes new keys, and sessions of this one end
/// without being counted again.
fn new_boot(shared: &Shared) {
    if let Ok(mut state) = shared.state.lock() {
        state.pinned = None;
        state.generation += 1;
    }
}

fn refused(shared: &Shared, reason: &str) {
    shared.events.write(serde_json::json!({
        "event": "refused",
        "reason": reason,
    }));
}

async fn session(shared: &Shared, stream: tokio::net::TcpStream) -> anyhow::Result<()> {
    // The boot's secret as the boot server issued it: read again for every connection.
    let secret = hex32(
        &std::fs::read_to_string(&shared.args.boot_secret_file)
            .with_context(|| format!("reading {}", shared.args.boot_secret_file.display()))?,
        "the boot secret",
    )?;
    let schedule = Schedule {
        max_message: MAX_ATTESTATION_MESSAGE as usize,
        ..Schedule::default()
    };
    let accepted = tokio::time::timeout(
        shared.config.answer_timeout,
        Channel::accept(stream, shared.noise_private, secret, None, schedule),
    )
    .await;
    let mut channel = match accepted {
        Ok(Ok(channel)) => channel,
        Ok(Err(error)) => {
            refused(shared, &error.to_string());
            return Ok(());
        }
        Err(_) => {
            refused(shared, "the handshake timed out");
            return Ok(());
        }
    };
    // Until the agent's first message the peer proved nothing (a first handshake message can
    // be replayed): a failure is a refusal, not the HPC's violation.
    if let Err(reason) = server::hello(&mut channel, &shared.config).await {
        refused(shared, &reason);
        return Ok(());
    }
    // Live and holding the boot's secret: the boot's key is pinned, or this is a second one.
    let (generation, expectations) = {
        let mut state = shared
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("state poisoned"))?;
        match state.pinned {
            Some(key) if key != channel.remote_static() => None,
            _ => {
                state.pinned = Some(channel.remote_static());
                Some((state.generation, state.expectations.clone()))
            }
        }
    }
    .unzip();
    let (Some(generation), Some(expectations)) = (generation, expectations) else {
        // The boot secret in another agent's hands: not this boot's HPC alone any more.
        record(
            shared,
            Violation::Channel(ChannelError::PeerChanged.to_string()),
        );
        return Ok(());
    };
    let current = || {
        shared
            .state
            .lock()
            .map(|state| state.generation == generation)
            .unwrap_or(false)
    };
    let violated = |violation: Violation| {
        if current() {
            record(shared, violation);
        } else {
            info!(?violation, "a session of an earlier boot ended");
        }
    };
    // The HPC's TPM, established for this boot, where the gateway attests TPMs.
    let identity = match &shared.tpm_trust {
        None => None,
        Some(_trust) => {
            #[cfg(feature = "tpm")]
            let established = server::tpm_identity(&mut channel, &shared.config, _trust).await;
            #[cfg(not(feature = "tpm"))]
            let established: Result<server::TpmIdentity, Violation> =
                Err(Violation::Gateway("built without TPM support".into()));
            match established {
                Ok(identity) => Some(identity),
                Err(violation) => {
                    violated(violation);
                    return Ok(());
                }
            }
        }
    };
    let unknown_tpm = || Violation::Report(capsule_primitives::AttestationFailure::UnknownTpm);
    // The expectations this boot is held to, and whether they are new (enrolled now).
    let (expectations, enrolled) = match expectations {
        Some(expectations) => match (&expectations.tpm, identity) {
            (None, None) => (expectations, false),
            (Some(enrolled), Some(identity)) if identity.ek_modulus == enrolled.ek_modulus => {
                // This boot's attestation key, for this boot's quotes.
                let mut session = (*expectations).clone();
                if let Some(tpm) = session.tpm.as_mut() {
                    tpm.attestation_key = identity.attestation_key;
                }
                (Arc::new(session), false)
            }
            // Another TPM; or enrolled without one where TPMs are attested (a downgrade); or
            // enrolled with one where this gateway cannot establish it.
            _ => {
                violated(unknown_tpm());
                return Ok(());
            }
        },
        None => match server::enrol(
            &mut channel,
            &shared.config,
            shared.boot_images.clone(),
            identity,
        )
        .await
        {
            Ok((expectations, _)) => (Arc::new(expectations), true),
            Err(violation) => {
                violated(violation);
                return Ok(());
            }
        },
    };
    // Measured boot before enrolment is kept: PCRs the firmware's log does not bear out are
    // not enrolled (every later boot would be held to them).
    if let Err(violation) = measured_boot(&mut channel, shared, &expectations).await {
        violated(violation);
        return Ok(());
    }
    if enrolled {
        std::fs::write(&shared.args.expectations, expectations.encode())
            .with_context(|| format!("writing {}", shared.args.expectations.display()))?;
        shared.events.write(serde_json::json!({
            "event": "enrolled",
            "fingerprint_root": hex::encode(expectations.fingerprint_root().0),
            "tpm": expectations.tpm.is_some(),
            // The quoted values every later boot must match (PCR index → SHA-256).
            "pcrs": expectations.tpm.as_ref().map(|tpm| {
                tpm.pcrs
                    .iter()
                    .map(|(index, value)| (index.to_string(), hex::encode(value).into()))
                    .collect::<serde_json::Map<_, _>>()
            }),
        }));
        if let Ok(mut state) = shared.state.lock() {
            state.expectations = Some(expectations.clone());
        }
    }
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = {
        let events = shared.events.clone();
        tokio::spawn(async move {
            while let Some(Event::Accepted { evidence, latency }) = events_rx.recv().await {
                events.write(serde_json::json!({
                    "event": "accepted",
                    "latency_us": latency.as_micros() as u64,
                    "evidence": hex::encode(evidence.signed.digest()),
                }));
            }
        })
    };
    let server = Server {
        expectations: &expectations,
        root: &shared.root,
        power: &shared.power,
        task: &NoTask,
        tasks: shared.tasks.as_ref(),
        config: shared.config.clone(),
        still_current: &current,
    };
    let record = server.serve(&mut channel, &events_tx).await;
    drop(events_tx);
    let _ = writer.await;
    if record.powered_at.is_some() {
        shared.events.violation(&record);
        new_boot(shared);
    } else {
        info!(violation = ?record.violation, "session ended without a power-cycle");
    }
    Ok(())
}
