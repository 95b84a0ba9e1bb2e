//! # Capsule agent
//!
//! The agent inside the HPC's boot image. At every boot it makes its session keys: an X25519
//! key, its Noise static key (to which data keys are re-wrapped), and an Ed25519 key that signs
//! reports and result manifests. It opens the Noise channel to its gateway (whose static key
//! and per-boot secret it was given) and answers each challenge with a [`SignedReport`] of what
//! [`capsule_measure`] reads, bound to the challenge's nonce and carrying both session keys,
//! with a TPM quote over the report's quoted digest where the HPC has a TPM (feature `tpm`).
//!
//! The same channel carries the gateway's tasks ([`task`]): the agent runs them through the
//! executor, between challenges, and sends the firmware's TPM event log when asked.
//!
//! A report it cannot make (a source it needs failed) is answered with
//! [`AgentMessage::CannotReport`] and the reason, never a panic or silence.
pub mod boot;
pub mod task;

use capsule_channel::{Channel, ChannelError};
use capsule_measure::{DiskTree, MeasureError, Sources};
use capsule_primitives::{
    agent::{AgentMessage, GatewayMessage, MAX_REASON},
    keys::HpcSessionKeys,
    report::{quoted_digest, report_signing_message, HpcReport, Nonce},
    BoundedVec, SignedReport,
};
use codec::{DecodeAll, Encode};
use ed25519_dalek::{Signer, SigningKey};
use rand_core::OsRng;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{info, warn};

/// The keys made at every boot.
pub struct SessionKeys {
    pub noise_private: [u8; 32],
    pub noise_public: [u8; 32],
    pub signing: SigningKey,
}

impl SessionKeys {
    /// Fresh keys from the OS's randomness.
    pub fn generate() -> Result<Self, ChannelError> {
        let (noise_private, noise_public) = capsule_channel::generate_static_key()?;
        Ok(Self {
            noise_private,
            noise_public,
            signing: SigningKey::generate(&mut OsRng),
        })
    }

    /// Both public keys, as reports carry them.
    pub fn public(&self) -> HpcSessionKeys {
        HpcSessionKeys {
            x25519: self.noise_public,
            ed25519: self.signing.verifying_key().to_bytes(),
        }
    }
}

/// Quotes from the HPC's TPM.
#[cfg(feature = "tpm")]
pub struct TpmQuoter {
    pub tpm: capsule_root_of_trust::tpm::Tpm,
    pub key: capsule_root_of_trust::tpm::AttestationKey,
    pub pcrs: Vec<u8>,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Measure(#[from] MeasureError),
    #[error("the gateway sent a message that is not a gateway message")]
    Undecodable,
    #[error("the TPM failed: {0}")]
    Tpm(String),
}

fn cannot(reason: &str) -> AgentMessage {
    let mut reason = reason.as_bytes().to_vec();
    reason.truncate(MAX_REASON as usize);
    AgentMessage::CannotReport(BoundedVec::truncate_from(reason))
}

/// Test-only misbehaviour (feature `fault-injection`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// From the second challenge on, answer with the first report again.
    ReplayFirstReport,
    /// Sign reports with a key that is not the reported one.
    WrongSigningKey,
}

/// An HPC's agent for one boot.
pub struct Agent {
    sources: Sources,
    salt: [u8; 32],
    disk: Option<DiskTree>,
    keys: SessionKeys,
    #[cfg(feature = "tpm")]
    tpm: Option<TpmQuoter>,
    event_log: Option<std::path::PathBuf>,
    tasks: Option<task::Tasks>,
    fault: Option<Fault>,
}

impl Agent {
    /// Reads the disk once (its tree) and keeps `keys` for the boot.
    pub fn new(sources: Sources, salt: [u8; 32], keys: SessionKeys) -> Result<Self, AgentError> {
        let disk = sources
            .disk
            .as_deref()
            .map(|path| DiskTree::build(path, sources.disk_block_bytes))
            .transpose()?;
        Ok(Self {
            sources,
            salt,
            disk,
            keys,
            #[cfg(feature = "tpm")]
            tpm: None,
            event_log: None,
            tasks: None,
            fault: None,
        })
    }

    /// Runs the tasks the gateway sends (one at a time), with this boot's keys.
    pub fn with_tasks(mut self, config: task::TaskConfig) -> Self {
        self.tasks = Some(task::Tasks::new(
            self.keys.noise_private,
            self.keys.signing.clone(),
            config,
        ));
        self
    }

    /// Sends the firmware's TPM event log from `path` when the gateway asks
    /// (`/sys/kernel/security/tpm0/binary_bios_measurements` on Linux).
    pub fn with_event_log(mut self, path: std::path::PathBuf) -> Self {
        self.event_log = Some(path);
        self
    }

    /// Quotes with `quoter` in every report.
    #[cfg(feature = "tpm")]
    pub fn with_tpm(mut self, quoter: TpmQuoter) -> Self {
        self.tpm = Some(quoter);
        self
    }

    /// The TPM the reports quote with, if any.
    #[cfg(feature = "tpm")]
    pub fn tpm(&self) -> Option<&TpmQuoter> {
        self.tpm.as_ref()
    }

    /// Misbehaves as told (tests only).
    #[cfg(feature = "fault-injection")]
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    pub fn session_keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// A signed report for `nonce`.
    pub fn report(&self, nonce: Nonce, disk_samples: u32) -> Result<SignedReport, AgentError> {
        let golden = capsule_measure::golden_fields(
            &self.sources,
            &self.salt,
            self.disk.as_ref(),
            &nonce,
            disk_samples,
        )?;
        let session_keys = self.keys.public();
        let _quoted = quoted_digest(&nonce, &session_keys, &golden);
        #[cfg(feature = "tpm")]
        let quote = self
            .tpm
            .as_ref()
            .map(|q| q.tpm.quote(&q.key, &_quoted, &q.pcrs))
            .transpose()
            .map_err(|e| AgentError::Tpm(e.to_string()))?;
        #[cfg(not(feature = "tpm"))]
        let quote = None;
        let report = HpcReport {
            nonce,
            session_keys,
            golden,
            info: capsule_measure::informational(&self.sources.proc_dir),
            quote,
        };
        let signing = match self.fault {
            Some(Fault::WrongSigningKey) => SigningKey::generate(&mut OsRng),
            _ => self.keys.signing.clone(),
        };
        let signature = signing.sign(&report_signing_message(&report)).to_bytes();
        Ok(SignedReport { report, signature })
    }

    /// The HPC's TPM identity (EK certificate, this boot's attestation key), or that it has
    /// none.
    fn tpm_identity(&self) -> AgentMessage {
        #[cfg(feature = "tpm")]
        if let Some(quoter) = &self.tpm {
            return match quoter.tpm.ek_certificate() {
                Ok(certificate) => match (
                    BoundedVec::try_from(certificate),
                    BoundedVec::try_from(quoter.key.public_area.clone()),
                ) {
                    (Ok(ek_certificate), Ok(attestation_key_public)) => AgentMessage::TpmIdentity {
                        ek_certificate,
                        attestation_key_public,
                    },
                    _ => cannot("the EK certificate or the attestation key is too large to send"),
                },
                Err(error) => cannot(&error.to_string()),
            };
        }
        AgentMessage::NoTpm
    }

    /// The answer to a task message.
    fn task_message(&self, message: GatewayMessage) -> AgentMessage {
        let Some(tasks) = &self.tasks else {
            return AgentMessage::TaskRefused(BoundedVec::truncate_from(
                b"this agent runs no tasks".to_vec(),
            ));
        };
        match message {
            GatewayMessage::TaskOffer(offer) => tasks.offer(offer),
            GatewayMessage::TaskData(piece) => tasks.data(&piece),
            GatewayMessage::TaskPoll => tasks.poll(),
            GatewayMessage::TaskOutputRequest { index, offset } => tasks.output(index, offset),
            _ => tasks.done(),
        }
    }

    /// The firmware's event log, or why there is none.
    fn event_log(&self) -> AgentMessage {
        let Some(path) = &self.event_log else {
            return cannot("this HPC keeps no firmware event log");
        };
        match std::fs::read(path) {
            Ok(bytes) => match BoundedVec::try_from(bytes) {
                Ok(log) => AgentMessage::EventLog(log),
                Err(_) => cannot("the firmware event log is larger than a message carries"),
            },
            Err(error) => cannot(&format!("reading {}: {error}", path.display())),
        }
    }

    /// Recovers a credential for this boot's attestation key.
    fn activate(&self, id_object: Vec<u8>, encrypted_secret: Vec<u8>) -> AgentMessage {
        #[cfg(feature = "tpm")]
        if let Some(quoter) = &self.tpm {
            let credential = capsule_root_of_trust::credential::Credential {
                id_object,
                encrypted_secret,
            };
            return match quoter.tpm.activate_credential(&quoter.key, &credential) {
                Ok(secret) => match <[u8; 32]>::try_from(secret) {
                    Ok(secret) => AgentMessage::CredentialActivated(secret),
                    Err(_) => cannot("the credential is not 32 bytes"),
                },
                Err(error) => cannot(&error.to_string()),
            };
        }
        let _ = (id_object, encrypted_secret);
        cannot("this HPC has no TPM")
    }

    /// Answers challenges until the channel ends.
    pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        channel: &mut Channel<S>,
    ) -> Result<(), AgentError> {
        let mut first: Option<SignedReport> = None;
        // Proves the session live: the gateway counts nothing against the HPC before it.
        channel.send(&AgentMessage::Hello.encode()).await?;
        loop {
            let message = channel.recv().await?;
            let (nonce, disk_samples) = match GatewayMessage::decode_all(&mut message.as_slice())
                .map_err(|_| AgentError::Undecodable)?
            {
                GatewayMessage::Challenge {
                    nonce,
                    disk_samples,
                } => (nonce, disk_samples),
                GatewayMessage::TpmIdentityRequest => {
                    channel.send(&self.tpm_identity().encode()).await?;
                    continue;
                }
                GatewayMessage::EventLogRequest => {
                    channel.send(&self.event_log().encode()).await?;
                    continue;
                }
                task @ (GatewayMessage::TaskOffer(_)
                | GatewayMessage::TaskData(_)
                | GatewayMessage::TaskPoll
                | GatewayMessage::TaskOutputRequest { .. }
                | GatewayMessage::TaskDone) => {
                    channel.send(&self.task_message(task).encode()).await?;
                    continue;
                }
                GatewayMessage::ActivateCredential {
                    id_object,
                    encrypted_secret,
                } => {
                    let answer =
                        self.activate(id_object.into_inner(), encrypted_secret.into_inner());
                    channel.send(&answer.encode()).await?;
                    continue;
                }
            };
            let answer = match (self.fault, &first) {
                (Some(Fault::ReplayFirstReport), Some(old)) => AgentMessage::Report(old.clone()),
                _ => match self.report(nonce, disk_samples) {
                    Ok(signed) => {
                        first.get_or_insert_with(|| signed.clone());
                        AgentMessage::Report(signed)
                    }
                    Err(error) => {
                        warn!(%error, "cannot report");
                        cannot(&error.to_string())
                    }
                },
            };
            channel.send(&answer.encode()).await?;
            info!("answered a challenge");
        }
    }
}
