//! The attestation server's loop for one HPC over its agent channel.
//!
//! It challenges at unpredictable intervals (exponentially distributed, so the time since the
//! last challenge says nothing about the next; mean [`ServerConfig::mean_interval`]), with a
//! fresh random nonce each time, and checks each answer ([`check_report`]). The boot's session
//! keys are pinned at the first report, which must carry the channel's own static key. Each
//! accepted report is countersigned and handed out as [`Event::Accepted`]. The first violation
//! (a failed check, a report the agent cannot make, no answer in time, an undecodable message,
//! a broken channel) stops the running task, power-cycles the HPC, and ends the loop with the
//! [`ViolationRecord`] an audit round takes as evidence. Policy: every violation power-cycles:
//! an HPC whose state or channel cannot be vouched for is booted afresh.
use std::time::{Duration, Instant};

use capsule_channel::Channel;
use capsule_primitives::{
    agent::{AgentMessage, GatewayMessage},
    keys::HpcSessionKeys,
    report::Nonce,
    AttestationEvidence, AttestationFailure, SignedReport,
};
use capsule_root_of_trust::{event_log::MeasuredBoot, tpm_quote::ClockInfo, RootOfTrust};
use codec::{DecodeAll, Encode};
use rand_core::{OsRng, RngCore};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{info, warn};

use crate::{
    changed_sources, check_report, countersign,
    power::{PowerAction, PowerControl},
    task::{TaskJob, TaskRelay, POLL_INTERVAL},
    Challenge, Expectations,
};

/// How the server challenges.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Mean time between challenges.
    pub mean_interval: Duration,
    /// How long an answer may take.
    pub answer_timeout: Duration,
    /// Disk blocks sampled per challenge.
    pub disk_samples: u32,
    /// The gateway's account, inside each countersignature.
    pub gateway: [u8; 32],
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            mean_interval: Duration::from_secs(2),
            answer_timeout: Duration::from_secs(10),
            disk_samples: 4,
            gateway: [0; 32],
        }
    }
}

/// Why the server stopped trusting the HPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A report failed its check.
    Report(AttestationFailure),
    /// The agent said it cannot measure.
    CannotReport(String),
    /// No answer within the timeout.
    NoAnswer,
    /// A message that is not an agent message.
    Undecodable,
    /// The channel failed: dropped, garbled, replayed, or a peer with another key.
    Channel(String),
    /// The gateway itself failed (its root of trust would not countersign): not the HPC's
    /// doing, so no power-cycle.
    Gateway(String),
    /// The agent's result of a task did not check (signature, evidence, outputs).
    Task(String),
}

/// The evidence of a violation, for an audit round.
#[derive(Clone, Debug)]
pub struct ViolationRecord {
    pub violation: Violation,
    /// The offending report, when there was one.
    pub report: Option<SignedReport>,
    /// Fingerprint sources that differ from the enrolled ones.
    pub changed_sources: Vec<String>,
    pub detected_at: Instant,
    /// When the power-cycle was asked (none if power control failed).
    pub powered_at: Option<Instant>,
}

/// What the loop hands out while it runs.
#[derive(Clone, Debug)]
pub enum Event {
    Accepted {
        evidence: AttestationEvidence,
        /// From sending the challenge to the countersigned report.
        latency: Duration,
    },
}

/// Stops the task running on the HPC (the executor's side of a violation).
pub trait TaskControl: Send + Sync {
    fn stop_task(&self);
}

/// No task runs.
pub struct NoTask;

impl TaskControl for NoTask {
    fn stop_task(&self) {}
}

/// What a violation does to the HPC: the task stopped, then a power-cycle. When the
/// power-cycle was asked (none if power control failed, and the HPC stays suspect).
pub fn stop_and_power_cycle(task: &dyn TaskControl, power: &dyn PowerControl) -> Option<Instant> {
    task.stop_task();
    match power.act(PowerAction::Cycle) {
        Ok(()) => Some(Instant::now()),
        Err(error) => {
            warn!(%error, "the power-cycle failed: the HPC stays suspect");
            None
        }
    }
}

/// An exponentially distributed delay of mean `mean`.
pub fn next_interval(mean: Duration) -> Duration {
    // u in (0, 1]: never ln(0).
    let u = (OsRng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let u = 1.0 - u;
    mean.mul_f64(-u.ln())
}

fn fresh_nonce() -> Nonce {
    let mut nonce = [0u8; 32];
    OsRng.fill_bytes(&mut nonce);
    Nonce(nonce)
}

/// Sends `message` and waits for the agent's answer.
pub(crate) async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
    channel: &mut Channel<S>,
    config: &ServerConfig,
    message: &GatewayMessage,
) -> Result<AgentMessage, Violation> {
    channel
        .send(&message.encode())
        .await
        .map_err(|e| Violation::Channel(e.to_string()))?;
    let answer = tokio::time::timeout(config.answer_timeout, channel.recv())
        .await
        .map_err(|_| Violation::NoAnswer)?
        .map_err(|e| Violation::Channel(e.to_string()))?;
    match AgentMessage::decode_all(&mut answer.as_slice()) {
        Ok(AgentMessage::CannotReport(reason)) => Err(Violation::CannotReport(
            String::from_utf8_lossy(&reason).into_owned(),
        )),
        Ok(message) => Ok(message),
        Err(_) => Err(Violation::Undecodable),
    }
}

/// A TPM established for one boot: its EK, the attestation key it proved to hold, and the PCRs
/// its quotes must cover (the gateway's selection, not the agent's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmIdentity {
    pub ek_modulus: Vec<u8>,
    pub attestation_key: [u8; 33],
    pub pcrs: Vec<u8>,
}

/// The pinned CA list EK certificates must chain to (PEM or DER), and the PCR selection
/// quotes must cover (increasing).
#[derive(Clone, Debug, Default)]
pub struct TpmTrust {
    pub roots: Vec<Vec<u8>>,
    pub intermediates: Vec<Vec<u8>>,
    pub pcrs: Vec<u8>,
}

/// Waits for the agent's first message, [`AgentMessage::Hello`]: until it comes the peer has
/// proved nothing (an IK first message can be replayed), so a failure here is a refusal, not
/// an HPC violation.
pub async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    channel: &mut Channel<S>,
    config: &ServerConfig,
) -> Result<(), String> {
    let message = tokio::time::timeout(config.answer_timeout, channel.recv())
        .await
        .map_err(|_| "no hello in time".to_string())?
        .map_err(|e| e.to_string())?;
    match AgentMessage::decode_all(&mut message.as_slice()) {
        Ok(AgentMessage::Hello) => Ok(()),
        _ => Err("the first message is not a hello".into()),
    }
}

/// The disk sample count a challenge asks for: at least one, at most what a report carries.
fn disk_samples(config: &ServerConfig) -> u32 {
    config
        .disk_samples
        .clamp(1, capsule_primitives::report::MAX_DISK_SAMPLES)
}

/// Establishes the HPC's TPM for this boot: its EK certificate must chain to a pinned CA, and
/// it must recover a credential made (in software) for its attestation key under that EK, which
/// only the TPM holding both can. The key is taken from its `TPMT_PUBLIC`, checked to be a
/// restricted signing key the TPM made, and named here: a key the agent merely claims cannot
/// receive the credential. An HPC that says it has no TPM, on a gateway that attests TPMs, is
/// an unknown TPM.
#[cfg(feature = "tpm")]
pub async fn tpm_identity<S: AsyncRead + AsyncWrite + Unpin>(
    channel: &mut Channel<S>,
    config: &ServerConfig,
    trust: &TpmTrust,
) -> Result<TpmIdentity, Violation> {
    let unknown = |why: &dyn std::fmt::Display| {
        warn!(%why, "unknown TPM");
        Violation::Report(AttestationFailure::UnknownTpm)
    };
    let (certificate, public_area) =
        match ask(channel, config, &GatewayMessage::TpmIdentityRequest).await? {
            AgentMessage::NoTpm => return Err(unknown(&"the HPC says it has no TPM")),
            AgentMessage::TpmIdentity {
                ek_certificate,
                attestation_key_public,
            } => (ek_certificate, attestation_key_public),
            _ => return Err(Violation::Undecodable),
        };
    let (attestation_key, name) =
        capsule_root_of_trust::tpm::attestation_key_from_public(&public_area)
            .map_err(|e| unknown(&e))?;
    let ek_modulus = capsule_root_of_trust::tpm::verify_ek_certificate(
        &certificate,
        &trust.roots,
        &trust.intermediates,
    )
    .map_err(|e| unknown(&e))?;
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let credential =
        capsule_root_of_trust::credential::make_credential(&ek_modulus, &name, &secret)
            .map_err(|e| unknown(&e))?;
    let message = GatewayMessage::ActivateCredential {
        id_object: credential
            .id_object
            .try_into()
            .map_err(|_| unknown(&"credential too large"))?,
        encrypted_secret: credential
            .encrypted_secret
            .try_into()
            .map_err(|_| unknown(&"credential too large"))?,
    };
    match ask(channel, config, &message).await? {
        AgentMessage::CredentialActivated(recovered) if recovered == secret => Ok(TpmIdentity {
            ek_modulus,
            attestation_key,
            pcrs: trust.pcrs.clone(),
        }),
        _ => Err(unknown(&"the credential was not recovered")),
    }
}

/// Measured boot: the HPC's firmware event log must replay to `pcrs` (the quoted values this
/// boot is held to) wherever it measures, and show an image of `approved` (Authenticode
/// SHA-256s) loaded into PCR 4. A log that does not is refused like a failed quote.
pub async fn measured_boot<S: AsyncRead + AsyncWrite + Unpin>(
    channel: &mut Channel<S>,
    config: &ServerConfig,
    pcrs: &[(u8, [u8; 32])],
    approved: &[[u8; 32]],
) -> Result<MeasuredBoot, Violation> {
    match ask(channel, config, &GatewayMessage::EventLogRequest).await? {
        AgentMessage::EventLog(log) => MeasuredBoot::check(&log, pcrs, approved).map_err(|why| {
            warn!(%why, "the firmware event log is refused");
            Violation::Report(AttestationFailure::TpmQuote)
        }),
        _ => Err(Violation::Undecodable),
    }
}

/// Challenges once with a fresh nonce: the challenge and the report that answers it.
async fn request_report<S: AsyncRead + AsyncWrite + Unpin>(
    channel: &mut Channel<S>,
    config: &ServerConfig,
) -> Result<(Challenge, SignedReport), Violation> {
    let challenge = Challenge {
        nonce: fresh_nonce(),
        disk_samples: disk_samples(config),
    };
    let message = GatewayMessage::challenge(challenge.nonce, challenge.disk_samples);
    match ask(channel, config, &message).await? {
        AgentMessage::Report(signed) => Ok((challenge, signed)),
        _ => Err(Violation::Undecodable),
    }
}

/// Enrols an HPC at its first clean boot: one challenge whose report must carry the channel's
/// static key and verify under its own signing key; its golden fields become the
/// expectations (with `boot_images` approved) and, with a TPM established for the boot, its
/// quoted PCR values too. The report is not otherwise judged: enrolment is the registration
/// round's to vouch for.
pub async fn enrol<S: AsyncRead + AsyncWrite + Unpin>(
    channel: &mut Channel<S>,
    config: &ServerConfig,
    boot_images: std::collections::BTreeSet<capsule_primitives::measurement::MeasurementDigest>,
    tpm: Option<TpmIdentity>,
) -> Result<(Expectations, SignedReport), Violation> {
    let (challenge, signed) = request_report(channel, config).await?;
    if signed.report.session_keys.x25519 != channel.remote_static() {
        return Err(Violation::Report(AttestationFailure::SessionKeysChanged));
    }
    let tpm = match tpm {
        None => None,
        Some(identity) => {
            let quote = signed
                .report
                .quote
                .as_ref()
                .ok_or(Violation::Report(AttestationFailure::TpmQuote))?;
            // The gateway's selection, not whatever the agent chose to quote.
            if !quote
                .pcrs
                .iter()
                .map(|(i, _)| *i)
                .eq(identity.pcrs.iter().copied())
            {
                return Err(Violation::Report(AttestationFailure::TpmQuote));
            }
            Some(crate::TpmExpectations {
                ek_modulus: identity.ek_modulus,
                attestation_key: identity.attestation_key,
                pcrs: quote.pcrs.iter().copied().collect(),
            })
        }
    };
    let expectations = Expectations::enrol(&signed.report, boot_images, tpm);
    check_report(
        &signed,
        &challenge,
        &signed.report.session_keys,
        &expectations,
        None,
    )
    .map_err(Violation::Report)?;
    Ok((expectations, signed))
}

/// Everything the loop needs besides the channel.
pub struct Server<'a> {
    pub expectations: &'a Expectations,
    pub root: &'a dyn RootOfTrust,
    pub power: &'a dyn PowerControl,
    pub task: &'a dyn TaskControl,
    /// Tasks to relay to the agent (one at a time, between challenges), if this gateway runs
    /// any.
    pub tasks: Option<&'a tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<TaskJob>>>,
    pub config: ServerConfig,
    /// Whether this session is still the boot's (a violation elsewhere, which power-cycled
    /// the HPC, ends it: its own failures then are not another power-cycle).
    pub still_current: &'a (dyn Fn() -> bool + Sync),
}

impl Server<'_> {
    /// Runs until the first violation; `events` receives each accepted report.
    pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        channel: &mut Channel<S>,
        events: &tokio::sync::mpsc::UnboundedSender<Event>,
    ) -> ViolationRecord {
        let mut pinned: Option<HpcSessionKeys> = None;
        let mut clock: Option<ClockInfo> = None;
        let mut inbox = match self.tasks {
            Some(tasks) => Some(tasks.lock().await),
            None => None,
        };
        let mut relay: Option<TaskRelay> = None;
        let mut next_challenge = Instant::now() + next_interval(self.config.mean_interval);
        loop {
            // A new task once the session's first report passed (its session key is pinned).
            if let (None, Some(inbox), Some(_)) = (&relay, inbox.as_mut(), &pinned) {
                if let Ok(job) = inbox.try_recv() {
                    relay = Some(TaskRelay::new(job));
                }
            }
            let wake = match (&relay, &inbox) {
                (Some(relay), _) => relay.due().min(next_challenge),
                (None, Some(_)) => (Instant::now() + POLL_INTERVAL).min(next_challenge),
                (None, None) => next_challenge,
            };
            tokio::time::sleep_until(wake.into()).await;
            if Instant::now() >= next_challenge {
                match self.challenge_once(channel, &mut pinned, &mut clock).await {
                    Ok((evidence, latency)) => {
                        info!(?latency, "report accepted");
                        let _ = events.send(Event::Accepted { evidence, latency });
                    }
                    Err((violation, report)) => {
                        if let Some(relay) = relay.take() {
                            relay.abandon("the HPC failed attestation during the task");
                        }
                        return self.violated(violation, report);
                    }
                }
                next_challenge = Instant::now() + next_interval(self.config.mean_interval);
                continue;
            }
            let (Some(task), Some(keys)) = (relay.as_mut(), &pinned) else {
                continue;
            };
            match task.step(channel, &self.config, &keys.ed25519).await {
                Ok(false) => {}
                Ok(true) => relay = None,
                Err(violation) => {
                    if let Some(relay) = relay.take() {
                        relay.abandon("the HPC failed during the task");
                    }
                    return self.violated(violation, None);
                }
            }
        }
    }

    async fn challenge_once<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        channel: &mut Channel<S>,
        pinned: &mut Option<HpcSessionKeys>,
        clock: &mut Option<ClockInfo>,
    ) -> Result<(AttestationEvidence, Duration), (Violation, Option<SignedReport>)> {
        let sent = Instant::now();
        let (challenge, signed) = request_report(channel, &self.config)
            .await
            .map_err(|violation| (violation, None))?;
        let keys = match pinned {
            Some(keys) => *keys,
            None => {
                // The boot's first report: its X25519 key must be the channel's static key.
                if signed.report.session_keys.x25519 != channel.remote_static() {
                    return Err((
                        Violation::Report(AttestationFailure::SessionKeysChanged),
                        Some(signed),
                    ));
                }
                signed.report.session_keys
            }
        };
        match check_report(
            &signed,
            &challenge,
            &keys,
            self.expectations,
            clock.as_ref(),
        ) {
            Ok(quoted) => {
                *pinned = Some(keys);
                if quoted.is_some() {
                    *clock = quoted;
                }
                let attestation_key = self.expectations.tpm.as_ref().map(|t| t.attestation_key);
                let evidence = countersign(self.root, self.config.gateway, signed, attestation_key)
                    .map_err(|e| (Violation::Gateway(format!("countersigning: {e}")), None))?;
                Ok((evidence, sent.elapsed()))
            }
            Err(failure) => Err((Violation::Report(failure), Some(signed))),
        }
    }

    fn violated(&self, violation: Violation, report: Option<SignedReport>) -> ViolationRecord {
        let detected_at = Instant::now();
        let powered_at = if matches!(violation, Violation::Gateway(_)) {
            warn!(
                ?violation,
                "the gateway failed: the session ends, the HPC is not blamed"
            );
            None
        } else if !(self.still_current)() {
            warn!(?violation, "a session of an earlier boot ended");
            None
        } else {
            warn!(
                ?violation,
                "HPC violation: stopping the task and power-cycling"
            );
            stop_and_power_cycle(self.task, self.power)
        };
        let changed = report
            .as_ref()
            .map(|r| changed_sources(&self.expectations.fingerprint, &r.report.golden.fingerprint))
            .unwrap_or_default();
        ViolationRecord {
            violation,
            report,
            changed_sources: changed,
            detected_at,
            powered_at,
        }
    }
}
