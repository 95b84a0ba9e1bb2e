//! `capsule-agent`: the HPC's attestation agent (see the crate docs).
use std::path::PathBuf;

use anyhow::{bail, Context};
use capsule_agent::{Agent, SessionKeys};
use capsule_channel::{Channel, Schedule};
use capsule_measure::Sources;
use clap::Parser;

/// Answers the gateway's challenges with signed reports over the Noise channel.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The gateway's boot server (its address on the HPC link): the boot's configuration and
    /// boot image come from there, as in the PXE image. Replaces the four options below.
    #[arg(long, conflicts_with_all = ["gateway", "gateway_key", "boot_secret_file", "salt"])]
    boot_server: Option<std::net::IpAddr>,
    /// The gateway's attestation server, `host:port`.
    #[arg(long, required_unless_present = "boot_server")]
    gateway: Option<String>,
    /// The gateway's Noise static public key (64 hex digits).
    #[arg(long, required_unless_present = "boot_server")]
    gateway_key: Option<String>,
    /// File holding this boot's secret (64 hex digits).
    #[arg(long, required_unless_present = "boot_server")]
    boot_secret_file: Option<PathBuf>,
    /// The fingerprint salt (64 hex digits).
    #[arg(long, required_unless_present = "boot_server")]
    salt: Option<String>,
    /// A JSON file naming the measured paths (tests); without it, this machine's.
    #[arg(long)]
    sources: Option<PathBuf>,
    /// The boot image to hash, with the machine's own sources.
    #[arg(long, default_value = "/run/capsule/boot.efi")]
    boot_image: PathBuf,
    /// The disk to measure, with the machine's own sources.
    #[arg(long)]
    disk: Option<PathBuf>,
    /// The HPC's TPM, by TCTI (`device:/dev/tpmrm0`): reports then carry quotes.
    #[cfg(feature = "tpm")]
    #[arg(long)]
    tpm: Option<String>,
    /// The PCRs quoted (SHA-256 bank), comma-separated.
    /// The default: firmware and its configuration (0-3), the boot applications UEFI loaded
    /// (4: iPXE, the image), Secure Boot (7), the initramfs (9, by the kernel's EFI stub), the
    /// kernel command line (12, by systemd's stub) and PCR 16.
    #[cfg(feature = "tpm")]
    #[arg(long, default_value = "0,1,2,3,4,7,9,12,16", value_delimiter = ',')]
    pcrs: Vec<u8>,
    /// The firmware's TPM event log, sent when the gateway asks (with --tpm).
    #[cfg(feature = "tpm")]
    #[arg(
        long,
        default_value = "/sys/kernel/security/tpm0/binary_bios_measurements"
    )]
    event_log: PathBuf,
    /// The `pause` binary that holds a networked task's namespace (the image carries it);
    /// without it, tasks whose policy allows destinations are refused.
    #[arg(long)]
    holder_binary: Option<PathBuf>,
    /// Starts the container engine when the first task finds none (the boot image's
    /// `engine-up`).
    #[arg(long)]
    engine_start: Option<PathBuf>,
    /// Test-only misbehaviour: replay-first-report or wrong-signing-key.
    #[cfg(feature = "fault-injection")]
    #[arg(long)]
    fault: Option<String>,
}

fn hex32(text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    capsule_channel::key_from_hex(text).with_context(|| what.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let (gateway, gateway_key, secret, salt) = match args.boot_server {
        Some(server) => {
            let image = args.boot_image.clone();
            let config = tokio::task::spawn_blocking(move || {
                capsule_agent::boot::fetch(server, &image, std::time::Duration::from_secs(60))
            })
            .await??;
            (
                std::net::SocketAddr::new(server, config.attestation_port).to_string(),
                config.gateway_key,
                config.boot_secret,
                config.fingerprint_salt,
            )
        }
        None => {
            // clap requires all four without --boot-server.
            let (Some(gateway), Some(key), Some(secret_file), Some(salt)) = (
                args.gateway.clone(),
                args.gateway_key.as_deref(),
                args.boot_secret_file.as_ref(),
                args.salt.as_deref(),
            ) else {
                bail!("--gateway, --gateway-key, --boot-secret-file and --salt go together");
            };
            let secret = std::fs::read_to_string(secret_file)
                .with_context(|| format!("reading {}", secret_file.display()))?;
            (
                gateway,
                hex32(key, "--gateway-key")?,
                hex32(&secret, "the boot secret")?,
                hex32(salt, "--salt")?,
            )
        }
    };
    let sources = match &args.sources {
        Some(path) => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{} is not a sources file", path.display()))?,
        None => Sources::system(args.boot_image.clone(), args.disk.clone()),
    };
    let keys = SessionKeys::generate().context("making the session keys")?;
    let public = keys.public();
    // Announced on stdout, for the boot log and for tests.
    println!(
        "{{\"x25519\":\"{}\",\"ed25519\":\"{}\"}}",
        hex::encode(public.x25519),
        hex::encode(public.ed25519)
    );
    let holder_binary = args
        .holder_binary
        .as_ref()
        .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .transpose()?;
    let (noise_private, agent) = (keys.noise_private, Agent::new(sources, salt, keys)?);
    let agent = agent.with_tasks(capsule_agent::task::TaskConfig {
        holder_binary,
        engine_start: args.engine_start.clone(),
    });
    #[cfg(feature = "tpm")]
    let agent = match &args.tpm {
        None => agent,
        Some(tcti) => {
            let tpm = capsule_root_of_trust::tpm::Tpm::connect(tcti)
                .with_context(|| format!("opening the TPM at {tcti}"))?;
            let key = tpm
                .create_attestation_key()
                .context("making the boot's attestation key")?;
            agent
                .with_tpm(capsule_agent::TpmQuoter {
                    tpm,
                    key,
                    pcrs: args.pcrs.clone(),
                })
                .with_event_log(args.event_log.clone())
        }
    };
    #[cfg(feature = "fault-injection")]
    let agent = match args.fault.as_deref() {
        None => agent,
        Some("replay-first-report") => agent.with_fault(capsule_agent::Fault::ReplayFirstReport),
        Some("wrong-signing-key") => agent.with_fault(capsule_agent::Fault::WrongSigningKey),
        Some(other) => bail!("unknown fault {other:?}"),
    };
    let stream = tokio::net::TcpStream::connect(&gateway)
        .await
        .with_context(|| format!("connecting to the gateway at {gateway}"))?;
    stream.set_nodelay(true)?;
    let mut channel = Channel::initiate(
        stream,
        noise_private,
        gateway_key,
        secret,
        Schedule::default(),
    )
    .await
    .context("the handshake with the gateway failed: check --gateway-key and the boot secret")?;
    match agent.serve(&mut channel).await {
        Err(capsule_agent::AgentError::Channel(capsule_channel::ChannelError::Closed)) => Ok(()),
        Err(error) => bail!("the agent stopped: {error}"),
        Ok(()) => Ok(()),
    }
}
