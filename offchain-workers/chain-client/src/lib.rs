//! # Capsule chain client
//!
//! How the gateway daemon (and tests, and scripts) talk to the capsule chain: a typed subxt
//! client over the node's standard JSON-RPC. It bonds, registers a gateway with its proven
//! keys, votes in attestation rounds (commit, then reveal), and reads gateways, rounds (through
//! the runtime API `AttestationApi`), records and bonds.
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
use codec::{Decode, Encode};
use subxt::{OnlineClient, PolkadotConfig};
use tracing::{debug, info_span, Instrument};

pub use subxt::utils::AccountId32;
pub use subxt_signer::sr25519::Keypair;

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
        source: subxt::error::OnlineClientError,
    },
    /// The node runs a runtime whose calls or types differ from the ones this client was built
    /// for.
    #[error("the node's runtime does not match this client's metadata; run scripts/update-metadata.sh against it and rebuild")]
    MetadataMismatch,
    /// A transaction was rejected by the pool or failed in its block.
    #[error("{call} failed: {reason}")]
    Transaction { call: &'static str, reason: String },
    /// A read (storage, runtime API, blocks) failed.
    #[error("reading the chain failed: {0}")]
    Read(String),
    /// Our type and the runtime's disagree on an encoding.
    #[error("{what} does not encode as the runtime's type: {source}")]
    Encoding {
        what: &'static str,
        #[source]
        source: codec::Error,
    },
}

fn read_error(error: impl std::fmt::Display) -> ChainError {
    ChainError::Read(error.to_string())
}

/// Re-encodes `value` as the runtime's generated type of the same shape.
fn recode<A: Encode, B: Decode>(what: &'static str, value: &A) -> Result<B, ChainError> {
    B::decode(&mut &value.encode()[..]).map_err(|source| ChainError::Encoding { what, source })
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

/// A connection to one capsule node.
#[derive(Clone)]
pub struct ChainClient {
    api: OnlineClient<PolkadotConfig>,
}

impl ChainClient {
    /// Connects to the node at `url` (`ws://127.0.0.1:9944`) and checks that its runtime matches.
    pub async fn connect(url: &str) -> Result<Self, ChainError> {
        let api = OnlineClient::<PolkadotConfig>::from_url(url)
            .await
            .map_err(|source| ChainError::Connect {
                url: url.to_string(),
                source,
            })?;
        let client = Self { api };
        let at = client.api.at_current_block().await.map_err(read_error)?;
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

    /// The number of the newest finalized block.
    pub async fn finalized_number(&self) -> Result<u32, ChainError> {
        let at = self.api.at_current_block().await.map_err(read_error)?;
        u32::try_from(at.block_number()).map_err(read_error)
    }

    /// Waits until a best block numbered at least `number` is imported, and returns its number.
    pub async fn wait_for_best_block(&self, number: u32) -> Result<u32, ChainError> {
        let mut blocks = self.api.stream_best_blocks().await.map_err(read_error)?;
        while let Some(block) = blocks.next().await {
            let block = block.map_err(read_error)?;
            let seen = u32::try_from(block.number()).map_err(read_error)?;
            if seen >= number {
                return Ok(seen);
            }
        }
        Err(ChainError::Read(
            "the node closed its block subscription".into(),
        ))
    }

    /// Signs `tx` with `signer`, submits it and waits until it is finalized and succeeded.
    async fn submit<Call: subxt::transactions::Payload>(
        &self,
        call: &'static str,
        tx: Call,
        signer: &Keypair,
    ) -> Result<subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>, ChainError> {
        let who = AccountId32::from(signer.public_key().0);
        async {
            let fail = |reason: String| ChainError::Transaction { call, reason };
            let at = self.api.at_current_block().await.map_err(read_error)?;
            let progress = at
                .transactions()
                .sign_and_submit_then_watch_default(&tx, signer)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let events = progress
                .wait_for_finalized_success()
                .await
                .map_err(|e| fail(e.to_string()))?;
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
        let events = self.submit("attestation.register", tx, signer).await?;
        let opened = events
            .find_first::<chain::attestation::events::RoundOpened>()
            .ok_or_else(|| ChainError::Transaction {
                call: "attestation.register",
                reason: "no RoundOpened event".into(),
            })?
            .map_err(read_error)?;
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
            .commit(recode("round id", &round)?, commitment);
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
            recode("round id", &round)?,
            recode("verdict", &verdict)?,
            evidence,
            salt,
        );
        self.submit("attestation.reveal", tx, signer)
            .await
            .map(drop)
    }

    /// The open rounds from `from` on, at most `limit`, at the newest finalized block.
    pub async fn open_rounds(
        &self,
        from: RoundId,
        limit: u32,
    ) -> Result<Vec<RoundView>, ChainError> {
        let call = chain::runtime_apis()
            .attestation_api()
            .open_rounds(recode("round id", &from)?, limit);
        let at = self.api.at_current_block().await.map_err(read_error)?;
        at.runtime_apis().call(call).await.map_err(read_error)
    }

    /// The open rounds on whose committee `member` sits, at the newest finalized block.
    pub async fn rounds_of_member(
        &self,
        member: &AccountId32,
    ) -> Result<Vec<RoundView>, ChainError> {
        let call = chain::runtime_apis()
            .attestation_api()
            .rounds_of_member(*member);
        let at = self.api.at_current_block().await.map_err(read_error)?;
        at.runtime_apis().call(call).await.map_err(read_error)
    }

    /// The open round `round`, if it is still open.
    pub async fn round(&self, round: RoundId) -> Result<Option<RoundView>, ChainError> {
        Ok(self
            .open_rounds(round, 1)
            .await?
            .into_iter()
            .find(|view| view.id.0 == round.0))
    }

    /// A registered gateway.
    pub async fn gateway(&self, who: &AccountId32) -> Result<Option<GatewayInfo>, ChainError> {
        let at = self.api.at_current_block().await.map_err(read_error)?;
        let entry = at
            .storage()
            .try_fetch(chain::storage().attestation().gateways(), (*who,))
            .await
            .map_err(read_error)?;
        entry
            .map(|value| value.decode().map_err(read_error))
            .transpose()
    }

    /// A gateway's most recent closed-round records, oldest first.
    pub async fn records(&self, who: &AccountId32) -> Result<Vec<ClosedRecord>, ChainError> {
        let at = self.api.at_current_block().await.map_err(read_error)?;
        let entry = at
            .storage()
            .try_fetch(chain::storage().attestation().records(), (*who,))
            .await
            .map_err(read_error)?;
        match entry {
            Some(value) => Ok(value.decode().map_err(read_error)?.0),
            None => Ok(Vec::new()),
        }
    }

    /// The active part of an account's bond (what slashing and sampling weigh), 0 if unbonded.
    pub async fn active_bond(&self, who: &AccountId32) -> Result<u128, ChainError> {
        let at = self.api.at_current_block().await.map_err(read_error)?;
        let entry = at
            .storage()
            .try_fetch(chain::storage().deposit().ledgers(), (*who,))
            .await
            .map_err(read_error)?;
        match entry {
            Some(value) => Ok(value.decode().map_err(read_error)?.active),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_primitives::keys::DevicePublicKey;

    #[test]
    fn primitives_cross_into_the_generated_types_unchanged() {
        let key = DevicePublicKey::Ed25519([7; 32]);
        let generated: chain::runtime_types::capsule_primitives::keys::DevicePublicKey =
            recode("device key", &key).unwrap();
        assert_eq!(generated.encode(), key.encode());

        for verdict in [Verdict::Pass, Verdict::Fail] {
            let generated: chain::runtime_types::capsule_primitives::attestation::Verdict =
                recode("verdict", &verdict).unwrap();
            assert_eq!(generated.encode(), verdict.encode());
        }
        let level: chain::runtime_types::capsule_primitives::attestation::HardwareLevel =
            recode("level", &HardwareLevel::HpcTpm).unwrap();
        assert_eq!(level.encode(), HardwareLevel::HpcTpm.encode());
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
    }
}
