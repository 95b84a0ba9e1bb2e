//! # Capsule chain client
//!
//! How the gateway daemon (and tests, and scripts) talk to the capsule chain: a typed subxt
//! client over the node's standard JSON-RPC. It bonds, registers a gateway with its proven
//! keys, votes in attestation rounds (commit, then reveal), and reads gateways, rounds (through
//! the runtime API `AttestationApi`), records and bonds. For the task market ([`tasks`]) it
//! creates and cancels tasks, computes a gateway's private VRF ticket for a draw
//! ([`sortition`]), claims, submits signed result manifests, and reads tasks and escrow.
//!
//! The typed API is generated from `metadata/capsule.scale`, the runtime's metadata; after a
//! runtime change, `scripts/update-metadata.sh` refreshes it. [`ChainClient::connect`] refuses a
//! node whose runtime no longer matches, instead of submitting calls it would misread.
//!
//! The shared types (keys, signatures, verdicts, levels) are `capsule_primitives`' own; they
//! cross into the generated types by their SCALE encoding, which both sides define identically
//! (checked by the round-trip tests below).
use capsule_primitives::{
    attestation::{HardwareLevel, Verdict},
    ids::RoundId,
    keys::{DevicePublicKey, DeviceSignature, FingerprintRoot},
};
use codec::{DecodeAll, Encode};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use subxt::{OnlineClient, PolkadotConfig};
use tracing::{debug, info_span, Instrument};

pub mod sortition;
pub mod tasks;

pub use sortition::{TaskTicket, VrfSigner};
pub use subxt::utils::AccountId32;
pub use subxt_signer::sr25519::Keypair;
pub use tasks::{CreatedTask, EpochSnapshot, NewTask, OpenDraw, Task, TaskStatus};

/// The typed API generated from the runtime's metadata.
#[subxt::subxt(
    runtime_metadata_path = "metadata/capsule.scale",
    derive_for_all_types = "Clone, PartialEq, Eq, ::codec::Encode, ::codec::Decode"
)]
pub mod chain {}

use chain::runtime_types::pallet_attestation as attestation_types;

/// An open round as the runtime API lists it.
pub type RoundView = attestation_types::RoundView<AccountId32, u32>;
/// Where a round stands (awaiting its seed, voting, awaiting root).
pub type RoundStatus = attestation_types::RoundStatus<u32>;
/// What the chain knows of a gateway.
pub type GatewayInfo = attestation_types::GatewayInfo<u32>;
/// Where a gateway stands.
pub type GatewayStatus = attestation_types::GatewayStatus;
/// What a closed round left on chain.
pub type ClosedRecord = attestation_types::ClosedRecord;
/// The outcome of a closed round.
pub type RoundOutcome = chain::runtime_types::capsule_pallet_traits::RoundOutcome;

/// What can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// No node answered at the address.
    #[error("cannot connect to a capsule node at {url}: {source}; is `capsule-node` running with its RPC on that address?")]
    Connect {
        url: String,
        #[source]
        source: Box<subxt::error::OnlineClientError>,
    },
    /// `ws://` and `http://` are refused except on loopback: the gateway talks to its own node.
    #[error("{url} is neither loopback nor TLS; use wss:// for a remote node, or run the node on this machine (ws://127.0.0.1)")]
    InsecureUrl { url: String },
    /// The node runs a runtime whose calls or types differ from the ones this client was built
    /// for.
    #[error("the node's runtime does not match this client's metadata; run scripts/update-metadata.sh against it and rebuild")]
    MetadataMismatch,
    /// The runtime ran the call and refused it with one of our pallets' errors (or another
    /// pallet's): the typed error, decoded from the node's metadata.
    #[error("{call} was refused: {error:?}; {}", advice(.error))]
    Refused {
        call: &'static str,
        error: Box<chain::Error>,
    },
    /// The transaction failed otherwise: rejected by the pool (bad nonce, no funds for fees),
    /// dropped, or failed with a non-pallet dispatch error (bad origin, token errors).
    #[error("{call} failed: {source}")]
    Transaction {
        call: &'static str,
        #[source]
        source: Box<subxt::Error>,
    },
    /// The transaction succeeded but its block lacks the event it must emit.
    #[error("{call} succeeded without its {event} event; the runtime and this client disagree")]
    MissingEvent {
        call: &'static str,
        event: &'static str,
    },
    /// A read (storage, runtime API, blocks) failed.
    #[error("reading {what} failed: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: Box<subxt::Error>,
    },
    /// Our type and the runtime's disagree on an encoding.
    #[error("{what} does not encode as the runtime's type: {source}")]
    Encoding {
        what: &'static str,
        #[source]
        source: codec::Error,
    },
}

/// What to do about a refusal, for the errors a gateway meets while voting and registering.
fn advice(error: &chain::Error) -> &'static str {
    use attestation_types::pallet::Error as Attestation;
    use chain::runtime_types::pallet_task_market::pallet::Error as TaskMarket;
    match error {
        chain::Error::Attestation(error) => match error {
            Attestation::NotInCommitPhase => "the round is not taking commitments: it is not seeded yet, or its commit period is over",
            Attestation::NotInRevealPhase => "reveals are taken only after the commit period and until the reveal deadline",
            Attestation::NotAMember => "this account is not on the round's committee (see rounds_of_member)",
            Attestation::AlreadyCommitted | Attestation::AlreadyRevealed => "this member has already voted in this round",
            Attestation::RevealMismatch => "reveal exactly the verdict, evidence and salt that were committed",
            Attestation::InsufficientBond => "bond at least the minimum first (deposit.bond)",
            Attestation::UnknownRound => "the round has closed or never existed (see open_rounds)",
            _ => "see the attestation pallet's documentation of this error",
        },
        chain::Error::TaskMarket(error) => match error {
            TaskMarket::NotClaiming => "the task is not taking claims: it is not seeded yet, or its draw is over (see task)",
            TaskMarket::ClaimWindowClosed => "claims are taken until the draw's closes_at block only",
            TaskMarket::NotEligible => "this account is not in the task's epoch snapshot: only Active gateways with a score and a bond are drawn",
            TaskMarket::InvalidVrfProof => "prove over this task's current seed and id, as this account, with the registered VRF key",
            TaskMarket::AboveThreshold => "the ticket's score is not under the threshold: this gateway may not claim this draw",
            TaskMarket::ExecutorBusy => "an executor runs one task at a time: wait until its task settles",
            TaskMarket::NotRunning => "submit the result after the pre-task round passed, once",
            TaskMarket::DeadlinePassed => "the result came after the task's deadline; the task is drawn again",
            TaskMarket::BadManifestSignature => "sign the manifest's signing_message with the Ed25519 session key named in the claim",
            TaskMarket::InsufficientBalance => "the creator's free balance must cover the reward and the verifier-fee reserve",
            TaskMarket::TooManyTasks | TaskMarket::RoundUnavailable => "this block is full: retry in the next one",
            _ => "see the task-market pallet's documentation of this error",
        },
        _ => "see the pallet's documentation of this error",
    }
}

/// Wraps a read failure.
fn read(what: &'static str) -> impl FnOnce(subxt::Error) -> ChainError {
    move |source| ChainError::Read {
        what,
        source: Box::new(source),
    }
}

/// Re-encodes `value` as the runtime's generated type of the same shape; every byte must be
/// used, so a field one side lacks is an error, not a silent truncation.
fn recode<A: Encode, B: DecodeAll>(what: &'static str, value: &A) -> Result<B, ChainError> {
    B::decode_all(&mut &value.encode()[..]).map_err(|source| ChainError::Encoding { what, source })
}

/// The keys a gateway registers, each with its proof of possession over
/// `capsule_primitives::keys::key_proof_message` (domain tag, role, genesis hash, account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayKeys {
    pub device_key: DevicePublicKey,
    pub device_proof: DeviceSignature,
    /// sr25519 public key.
    pub vrf_key: [u8; 32],
    /// sr25519 signature (signing context `substrate`) by the VRF key.
    pub vrf_proof: [u8; 64],
    /// libp2p Ed25519 public key.
    pub network_key: [u8; 32],
    /// Ed25519 signature by the network key.
    pub network_proof: [u8; 64],
}

/// Held while one of a signer's transactions is in flight.
type SignerLock = Arc<tokio::sync::Mutex<()>>;

/// A connection to one capsule node.
///
/// Reads are at the newest finalized block: off-chain code acts on finalized state only
/// (ARCHITECTURE, "On chain"). Each transaction is signed with the nonce of that state and
/// awaited until finalized, so one signer has one transaction in flight at a time: this client
/// queues a signer's later transactions behind it (different signers run concurrently).
#[derive(Clone)]
pub struct ChainClient {
    api: OnlineClient<PolkadotConfig>,
    in_flight: Arc<Mutex<HashMap<[u8; 32], SignerLock>>>,
}

impl ChainClient {
    /// Connects to the node at `url` (`ws://127.0.0.1:9944`, or `wss://` for a remote node) and
    /// checks that its runtime matches this client.
    pub async fn connect(url: &str) -> Result<Self, ChainError> {
        let api = OnlineClient::<PolkadotConfig>::from_url(url)
            .await
            .map_err(|source| match source {
                subxt::error::OnlineClientError::RpcError(subxt::rpcs::Error::InsecureUrl(_)) => {
                    ChainError::InsecureUrl {
                        url: url.to_string(),
                    }
                }
                source => ChainError::Connect {
                    url: url.to_string(),
                    source: Box::new(source),
                },
            })?;
        let client = Self {
            api,
            in_flight: Arc::default(),
        };
        let at = client.at_finalized().await?;
        if !chain::is_codegen_valid_for(at.metadata_ref()) {
            return Err(ChainError::MetadataMismatch);
        }
        Ok(client)
    }

    /// The underlying subxt client, for what this crate does not wrap.
    pub fn api(&self) -> &OnlineClient<PolkadotConfig> {
        &self.api
    }

    /// The chain's genesis hash, which key proofs sign.
    pub fn genesis_hash(&self) -> [u8; 32] {
        self.api.genesis_hash().0
    }

    async fn at_finalized(
        &self,
    ) -> Result<
        subxt::client::ClientAtBlock<
            PolkadotConfig,
            subxt::client::OnlineClientAtBlockImpl<PolkadotConfig>,
        >,
        ChainError,
    > {
        self.api
            .at_current_block()
            .await
            .map_err(|e| read("the finalized block")(e.into()))
    }

    /// The number of the newest finalized block.
    pub async fn finalized_number(&self) -> Result<u32, ChainError> {
        let at = self.at_finalized().await?;
        Ok(block_number(at.block_number()))
    }

    /// Waits until a block numbered at least `number` is finalized, and returns its number.
    pub async fn wait_for_finalized(&self, number: u32) -> Result<u32, ChainError> {
        self.wait_for(self.api.stream_blocks().await, number).await
    }

    /// Waits until a best block numbered at least `number` is imported, and returns its number.
    pub async fn wait_for_best(&self, number: u32) -> Result<u32, ChainError> {
        self.wait_for(self.api.stream_best_blocks().await, number)
            .await
    }

    async fn wait_for(
        &self,
        blocks: Result<subxt::client::Blocks<PolkadotConfig>, subxt::error::BlocksError>,
        number: u32,
    ) -> Result<u32, ChainError> {
        let mut blocks = blocks.map_err(|e| read("the block subscription")(e.into()))?;
        while let Some(block) = blocks.next().await {
            let seen = block_number(
                block
                    .map_err(|e| read("the block subscription")(e.into()))?
                    .number(),
            );
            if seen >= number {
                return Ok(seen);
            }
        }
        Err(ChainError::Read {
            what: "the block subscription",
            source: Box::new(subxt::Error::Other(
                "the node closed the subscription".into(),
            )),
        })
    }

    /// The lock that keeps one transaction of `signer` in flight.
    fn signer_lock(&self, signer: &Keypair) -> SignerLock {
        let mut locks = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(signer.public_key().0).or_default().clone()
    }

    /// Signs `tx` with `signer`, submits it and waits until it is finalized and succeeded.
    async fn submit<Call: subxt::transactions::Payload>(
        &self,
        call: &'static str,
        tx: Call,
        signer: &Keypair,
    ) -> Result<subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>, ChainError> {
        let who = AccountId32::from(signer.public_key().0);
        let lock = self.signer_lock(signer);
        async {
            let _one_in_flight = lock.lock().await;
            let failed = |source: subxt::Error| refusal(call, source);
            let at = self.at_finalized().await?;
            let progress = at
                .transactions()
                .sign_and_submit_then_watch_default(&tx, signer)
                .await
                .map_err(|e| failed(e.into()))?;
            let events = progress
                .wait_for_finalized_success()
                .await
                .map_err(|e| failed(e.into()))?;
            debug!("finalized");
            Ok(events)
        }
        .instrument(info_span!("submit", call, %who))
        .await
    }

    /// Moves `amount` of the signer's free balance into its bond.
    pub async fn bond(&self, signer: &Keypair, amount: u128) -> Result<(), ChainError> {
        let tx = chain::transactions().deposit().bond(amount);
        self.submit("deposit.bond", tx, signer).await.map(drop)
    }

    /// Registers the signer's gateway. It is Pending until its registration round passes;
    /// returns the id of that round.
    pub async fn register(
        &self,
        signer: &Keypair,
        keys: &GatewayKeys,
        level: HardwareLevel,
        fingerprint: FingerprintRoot,
    ) -> Result<RoundId, ChainError> {
        const CALL: &str = "attestation.register";
        let keys = attestation_types::GatewayKeys {
            device_key: recode("device key", &keys.device_key)?,
            device_proof: recode("device proof", &keys.device_proof)?,
            vrf_key: keys.vrf_key,
            vrf_proof: keys.vrf_proof,
            network_key: keys.network_key,
            network_proof: keys.network_proof,
        };
        let tx = chain::transactions().attestation().register(
            keys,
            recode("hardware level", &level)?,
            recode("fingerprint root", &fingerprint)?,
        );
        let events = self.submit(CALL, tx, signer).await?;
        let opened =
            expect_event::<chain::attestation::events::RoundOpened>(&events, CALL, "RoundOpened")?;
        Ok(RoundId(opened.round.0))
    }

    /// Commits the signer's vote in `round`: `capsule_primitives::attestation::vote_commitment`.
    pub async fn commit(
        &self,
        signer: &Keypair,
        round: RoundId,
        commitment: [u8; 32],
    ) -> Result<(), ChainError> {
        let tx = chain::transactions()
            .attestation()
            .commit(generated_round(round), commitment);
        self.submit("attestation.commit", tx, signer)
            .await
            .map(drop)
    }

    /// Reveals the vote the signer committed to in `round`.
    pub async fn reveal(
        &self,
        signer: &Keypair,
        round: RoundId,
        verdict: Verdict,
        evidence: [u8; 32],
        salt: [u8; 32],
    ) -> Result<(), ChainError> {
        let tx = chain::transactions().attestation().reveal(
            generated_round(round),
            recode("verdict", &verdict)?,
            evidence,
            salt,
        );
        self.submit("attestation.reveal", tx, signer)
            .await
            .map(drop)
    }

    /// The open rounds from `from` on, at most `limit`, by id.
    pub async fn open_rounds(
        &self,
        from: RoundId,
        limit: u32,
    ) -> Result<Vec<RoundView>, ChainError> {
        let call = chain::runtime_apis()
            .attestation_api()
            .open_rounds(generated_round(from), limit);
        let at = self.at_finalized().await?;
        at.runtime_apis()
            .call(call)
            .await
            .map_err(|e| read("AttestationApi.open_rounds")(e.into()))
    }

    /// The open rounds on whose committee `member` sits, by id.
    pub async fn rounds_of_member(
        &self,
        member: &AccountId32,
    ) -> Result<Vec<RoundView>, ChainError> {
        let call = chain::runtime_apis()
            .attestation_api()
            .rounds_of_member(*member);
        let at = self.at_finalized().await?;
        at.runtime_apis()
            .call(call)
            .await
            .map_err(|e| read("AttestationApi.rounds_of_member")(e.into()))
    }

    /// The open round `round`, if it is still open.
    pub async fn round(&self, round: RoundId) -> Result<Option<RoundView>, ChainError> {
        Ok(self
            .open_rounds(round, 1)
            .await?
            .into_iter()
            .find(|view| view.id.0 == round.0))
    }

    /// The value at `addr` for `keys` at the newest finalized block, if there is one.
    async fn fetch<Addr: subxt::storage::Address>(
        &self,
        what: &'static str,
        addr: Addr,
        keys: Addr::KeyParts,
    ) -> Result<Option<Addr::Value>, ChainError> {
        let at = self.at_finalized().await?;
        let entry = at
            .storage()
            .try_fetch(addr, keys)
            .await
            .map_err(|e| read(what)(e.into()))?;
        entry
            .map(|value| value.decode().map_err(|e| read(what)(e.into())))
            .transpose()
    }

    /// A registered gateway.
    pub async fn gateway(&self, who: &AccountId32) -> Result<Option<GatewayInfo>, ChainError> {
        let addr = chain::storage().attestation().gateways();
        self.fetch("Attestation.Gateways", addr, (*who,)).await
    }

    /// A gateway's most recent closed-round records, oldest first.
    pub async fn records(&self, who: &AccountId32) -> Result<Vec<ClosedRecord>, ChainError> {
        let addr = chain::storage().attestation().records();
        let records = self.fetch("Attestation.Records", addr, (*who,)).await?;
        Ok(records.map(|bounded| bounded.0).unwrap_or_default())
    }

    /// The active part of an account's bond (what slashing and sampling weigh), 0 if unbonded.
    pub async fn active_bond(&self, who: &AccountId32) -> Result<u128, ChainError> {
        let addr = chain::storage().deposit().ledgers();
        let ledger = self.fetch("Deposit.Ledgers", addr, (*who,)).await?;
        Ok(ledger.map(|ledger| ledger.active).unwrap_or(0))
    }
}

/// The first `E` among a finalized call's events: every call we wrap emits one, so its absence
/// means the runtime and this client disagree.
fn expect_event<E: subxt::events::DecodeAsEvent>(
    events: &subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>,
    call: &'static str,
    event: &'static str,
) -> Result<E, ChainError> {
    events
        .find_first::<E>()
        .ok_or(ChainError::MissingEvent { call, event })?
        .map_err(|e| read("the call's events")(e.into()))
}

/// Block numbers are `u32` on our chain; subxt reports them as `u64`.
fn block_number(number: u64) -> u32 {
    u32::try_from(number).unwrap_or(u32::MAX)
}

/// A round id as the generated API wants it (the same `u64` newtype).
fn generated_round(round: RoundId) -> chain::runtime_types::capsule_primitives::ids::RoundId {
    chain::runtime_types::capsule_primitives::ids::RoundId(round.0)
}

/// Turns a failed submission into [`ChainError::Refused`] when the runtime refused it with a
/// pallet error, else into [`ChainError::Transaction`].
fn refusal(call: &'static str, source: subxt::Error) -> ChainError {
    use subxt::error::{DispatchError, TransactionEventsError, TransactionFinalizedSuccessError};
    if let subxt::Error::TransactionFinalizedSuccessError(
        TransactionFinalizedSuccessError::SuccessError(TransactionEventsError::ExtrinsicFailed(
            DispatchError::Module(module),
        )),
    ) = &source
    {
        if let Ok(error) = module.as_root_error::<chain::Error>() {
            return ChainError::Refused {
                call,
                error: Box::new(error),
            };
        }
    }
    ChainError::Transaction {
        call,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_primitives::{
        capsule::{CapsuleCid, CidCodec},
        ids::TaskId,
        keys::HpcSessionKeys,
        measurement::ImageDigest,
        policy::PolicyDigest,
        sortition::Threshold,
        task::{ResultManifest, TaskOutcome},
        vrf::VrfProofBytes,
    };
    use chain::runtime_types::capsule_primitives as generated;

    /// Recodes `ours` and checks the generated value encodes to the same bytes.
    fn crosses<A: Encode, B: DecodeAll + Encode>(ours: A) {
        let theirs: B = recode("value", &ours).expect("same shape");
        assert_eq!(theirs.encode(), ours.encode());
    }

    #[test]
    fn primitives_cross_into_the_generated_types_unchanged() {
        for key in [
            DevicePublicKey::EcdsaP256([2; 33]),
            DevicePublicKey::EcdsaSecp256k1([3; 33]),
            DevicePublicKey::Ed25519([7; 32]),
        ] {
            crosses::<_, generated::keys::DevicePublicKey>(key);
        }
        for signature in [
            DeviceSignature::EcdsaP256([4; 64]),
            DeviceSignature::EcdsaSecp256k1([5; 65]),
            DeviceSignature::Ed25519([6; 64]),
        ] {
            crosses::<_, generated::keys::DeviceSignature>(signature);
        }
        for verdict in [Verdict::Pass, Verdict::Fail] {
            crosses::<_, generated::attestation::Verdict>(verdict);
        }
        for level in [
            HardwareLevel::Software,
            HardwareLevel::GatewayHsm,
            HardwareLevel::HpcTpm,
        ] {
            crosses::<_, generated::attestation::HardwareLevel>(level);
        }
        crosses::<_, generated::keys::FingerprintRoot>(FingerprintRoot([8; 32]));
        crosses::<_, generated::keys::HpcSessionKeys>(HpcSessionKeys {
            x25519: [1; 32],
            ed25519: [2; 32],
        });
        crosses::<_, generated::vrf::VrfProofBytes>(VrfProofBytes {
            pre_output: [3; 32],
            proof: [4; 64],
        });
        crosses::<_, generated::sortition::Threshold>(Threshold {
            target: 5,
            total_weight: 6,
        });
        for outcome in [
            TaskOutcome::Completed,
            TaskOutcome::TimedOut,
            TaskOutcome::OomKilled,
            TaskOutcome::PolicyViolation,
        ] {
            crosses::<_, generated::task::ResultManifest>(ResultManifest {
                task: TaskId(7),
                outcome,
                results: vec![CapsuleCid {
                    codec: CidCodec::Raw,
                    digest: [8; 32],
                }]
                .try_into()
                .expect("one result"),
                evidence: [9; 32],
            });
        }
        crosses::<_, chain::runtime_types::pallet_task_market::TaskSpec>(NewTask {
            image: ImageDigest([1; 32]),
            inputs: vec![CapsuleCid {
                codec: CidCodec::DagPb,
                digest: [2; 32],
            }],
            policy: PolicyDigest([3; 32]),
            recipients: vec![AccountId32([4; 32])],
            timeout: 40,
        });
        assert_eq!(generated_round(RoundId(9)).encode(), RoundId(9).encode());
    }

    #[test]
    fn a_type_of_another_shape_is_an_encoding_error() {
        let error = recode::<u8, DevicePublicKey>("device key", &9).unwrap_err();
        assert!(
            matches!(
                error,
                ChainError::Encoding {
                    what: "device key",
                    ..
                }
            ),
            "{error}"
        );
        // Bytes left over are an error too: a field one side lacks is never dropped silently.
        let longer = (Verdict::Pass, 1u8);
        let error = recode::<_, generated::attestation::Verdict>("verdict", &longer).unwrap_err();
        assert!(
            matches!(
                error,
                ChainError::Encoding {
                    what: "verdict",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn refusals_say_what_to_do_next() {
        use attestation_types::pallet::Error as Attestation;
        let error = ChainError::Refused {
            call: "attestation.commit",
            error: Box::new(chain::Error::Attestation(Attestation::NotInCommitPhase)),
        };
        let message = error.to_string();
        assert!(
            message.contains("attestation.commit was refused: Attestation(NotInCommitPhase)")
                && message.contains("commit period is over"),
            "{message}"
        );
    }
}
