//! Types shared by the capsule runtime and the off-chain daemons, defined once.
//!
//! Everything here is `no_std`, SCALE-encoded, and described by `TypeInfo`, so the runtime
//! stores it, clients decode it from metadata, and the gateway, agent and CLI build the same
//! bytes. The crate depends on neither `frame-support` nor `sp-*`: daemons compile it without
//! the runtime's dependency tree.
//!
//! - [`ids`]: [`TaskId`], [`RoundId`], [`EpochIndex`].
//! - [`agent`]: the messages between a gateway and its HPC's agent.
//! - [`measurement`]: [`MeasurementDigest`] and [`ImageDigest`] (a Docker image id).
//! - [`attestation`]: [`Verdict`], [`HardwareLevel`], [`AttestationPhase`].
//! - [`golden`]: the golden measurements governance approves, and their ids.
//! - [`capsule`]: [`CapsuleCid`], the content id of a sealed capsule.
//! - [`policy`]: [`TaskPolicy`] and its [`PolicyDigest`].
//! - [`seed`]: the seeds of rounds and tasks, from the BABE VRF outputs after their opening.
//! - [`vrf`]: [`VrfProofBytes`] and the [`VrfTranscriptInput`] every sortition proof signs.
//! - [`sortition`]: the executor race: VRF output to score `-ln(u) / weight`, thresholds, in
//!   exact integer arithmetic.
//! - [`keys`]: the device, VRF and network keys a gateway registers, and their proofs.
//! - [`evidence`]: [`CleanupEvidence`], the digests of the host state before and after a run.
//! - [`task`]: [`TaskOutcome`] and the [`ResultManifest`] an executor's session key signs.
//! - [`report`]: the [`HpcReport`] an HPC's agent answers a challenge with, its signature, the
//!   gateway's countersignature, and why a report fails ([`AttestationFailure`]).
//! - [`signing`]: the digest an ECDSA account signs, so a hardware module can sign extrinsics.
//!
//! Each type's encoding is pinned by a golden vector in its module's tests; changing one is a
//! breaking change of the chain and every daemon.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod agent;
pub mod attestation;
pub mod capsule;
pub mod evidence;
pub mod golden;
pub mod hashing;
pub mod ids;
pub mod keys;
pub mod measurement;
pub mod policy;
pub mod report;
pub mod seed;
pub mod signing;
pub mod sortition;
pub mod task;
pub mod vrf;

pub use attestation::{AttestationPhase, HardwareLevel, Verdict};
pub use capsule::{CapsuleCid, CidCodec};
pub use evidence::{CleanupEvidence, HostStateCategory, HostStateDigest};
pub use golden::{GoldenId, GoldenKind, GoldenMeasurement, PcrBank, PcrPolicy};
pub use ids::{EpochIndex, RoundId, TaskId};
pub use keys::{DevicePublicKey, DeviceSignature, FingerprintRoot, KeyRole};
pub use measurement::{ImageDigest, MeasurementDigest};
pub use policy::{
    EgressRule, IpAddress, PolicyDigest, ResourceLimits, TaskPolicy, TransportProtocol,
};
pub use report::{AttestationEvidence, AttestationFailure, HpcReport, Nonce, SignedReport};
pub use task::{ResultManifest, TaskOutcome};
pub use vrf::{VrfDomain, VrfProofBytes, VrfTranscriptInput};

/// Re-exported so users name the same `BoundedVec` the types use.
pub use bounded_collections::{BoundedVec, ConstU32};
