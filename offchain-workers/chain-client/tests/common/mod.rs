//! What the integration tests share: the release node, the dev accounts and their gateway keys,
//! and a committee that votes every seat of a round.
#![allow(dead_code)] // Each test binary uses its own part.

use std::{path::PathBuf, time::Duration};

use capsule_chain_client::{
    AccountId32, ChainClient, GatewayKeys, GatewayStatus, Keypair, RoundStatus,
};
use capsule_node_fixture::{DevNode, DEFAULT_STARTUP_TIMEOUT};
use capsule_primitives::{
    attestation::{vote_commitment, HardwareLevel, Verdict},
    hashing::tagged_blake2_256,
    ids::RoundId,
    keys::{key_proof_message, DevicePublicKey, DeviceSignature, FingerprintRoot, KeyRole},
};
use ed25519_dalek::{Signer, SigningKey};
use futures::future::try_join_all;
use subxt_signer::sr25519::dev;

pub const UNIT: u128 = 1_000_000_000_000;
pub const BOND: u128 = 2_000 * UNIT;

/// The release node: `$CAPSULE_NODE`, or `capsule-node` in the target dir this test runs from.
pub fn node_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CAPSULE_NODE") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its path");
    // <target>/release/deps/<test> -> <target>/release/capsule-node
    let node = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("capsule-node"))
        .expect("the test runs from a target dir");
    assert!(
        node.exists(),
        "{} is missing: build it with `cargo build --release -p capsule-node` (same CARGO_TARGET_DIR), or set CAPSULE_NODE",
        node.display()
    );
    node
}

pub fn start(chain: &[&str]) -> DevNode {
    DevNode::start_with(node_binary(), chain, DEFAULT_STARTUP_TIMEOUT).expect("the node starts")
}

pub fn account(keypair: &Keypair) -> AccountId32 {
    AccountId32::from(keypair.public_key().0)
}

/// The well-known dev keypairs, by account, for whoever the chain draws.
pub fn dev_signer(who: &AccountId32) -> Keypair {
    [
        dev::alice(),
        dev::bob(),
        dev::charlie(),
        dev::dave(),
        dev::eve(),
        dev::ferdie(),
    ]
    .into_iter()
    .find(|keypair| &account(keypair) == who)
    .unwrap_or_else(|| panic!("{who} is not a dev account"))
}

/// A gateway's software keys, derived from a name, each proven for `who` on this chain.
pub fn proven_keys(client: &ChainClient, name: &str, who: &AccountId32) -> GatewayKeys {
    let genesis = client.genesis_hash();
    let message = |role| key_proof_message(role, &genesis, &who.0);
    let ed25519 = |label: &str| {
        SigningKey::from_bytes(&tagged_blake2_256(
            b"test/ed25519",
            format!("{name}/{label}").as_bytes(),
        ))
    };
    let device = ed25519("device");
    let network = ed25519("network");
    let vrf = Keypair::from_secret_key(tagged_blake2_256(b"test/sr25519", name.as_bytes()))
        .expect("a 32-byte seed makes an sr25519 key");
    GatewayKeys {
        device_key: DevicePublicKey::Ed25519(device.verifying_key().to_bytes()),
        device_proof: DeviceSignature::Ed25519(device.sign(&message(KeyRole::Device)).to_bytes()),
        vrf_key: vrf.public_key().0,
        vrf_proof: vrf.sign(&message(KeyRole::Vrf)).0,
        network_key: network.verifying_key().to_bytes(),
        network_proof: network.sign(&message(KeyRole::Network)).to_bytes(),
    }
}

pub async fn bond_and_register(client: &ChainClient, signer: &Keypair, name: &str) -> RoundId {
    let who = account(signer);
    client.bond(signer, BOND).await.expect("bond");
    let round = client
        .register(
            signer,
            &proven_keys(client, name, &who),
            HardwareLevel::Software,
            FingerprintRoot(tagged_blake2_256(b"test/fingerprint", name.as_bytes())),
        )
        .await
        .expect("register");
    let info = client.gateway(&who).await.unwrap().expect("registered");
    assert_eq!(info.status, GatewayStatus::Pending);
    round
}

/// A member's evidence digest for a round, bound to the round and the member.
pub fn evidence(round: RoundId, member: &AccountId32) -> [u8; 32] {
    let mut input = round.0.to_le_bytes().to_vec();
    input.extend_from_slice(&member.0);
    tagged_blake2_256(b"test/evidence", &input)
}

pub fn salt(round: RoundId, member: &AccountId32) -> [u8; 32] {
    let mut input = round.0.to_le_bytes().to_vec();
    input.extend_from_slice(&member.0);
    tagged_blake2_256(b"test/salt", &input)
}

/// What the committee of a round was and when its phases ended.
pub struct Voted {
    pub committee: Vec<AccountId32>,
    pub commit_until: u32,
    pub reveal_until: u32,
}

/// Plays the whole committee of each round through commit and reveal with the given verdict,
/// then waits until every round has closed. Members vote concurrently, as separate gateways do.
pub async fn vote(client: &ChainClient, rounds: &[(RoundId, Verdict)]) -> Vec<Voted> {
    let mut voted = Vec::new();
    for (round, verdict) in rounds {
        // Seeded L blocks after opening, then drawn; all read at finalized blocks.
        let view = loop {
            let view = client
                .round(*round)
                .await
                .unwrap()
                .expect("the round is open");
            match view.status {
                RoundStatus::Voting { .. } => break view,
                RoundStatus::AwaitingRoot => panic!("round {round:?} found no committee"),
                RoundStatus::AwaitingSeed { due } => {
                    client.wait_for_finalized(due).await.unwrap();
                }
            }
        };
        let RoundStatus::Voting {
            commit_until,
            reveal_until,
        } = view.status
        else {
            unreachable!("matched above")
        };
        assert!(view.seed.is_some(), "a voting round has its seed");
        for member in &view.committee {
            let listed = client.rounds_of_member(member).await.unwrap();
            assert!(
                listed.iter().any(|r| r.id.0 == round.0),
                "the runtime API lists round {round:?} for its member {member}"
            );
        }
        let now = client.finalized_number().await.unwrap();
        assert!(
            now < commit_until,
            "round {round:?} seen at block {now}, its commit period ended at {commit_until}"
        );
        try_join_all(view.committee.iter().map(|member| {
            let commitment = vote_commitment(
                *round,
                &member.0,
                *verdict,
                &evidence(*round, member),
                &salt(*round, member),
            );
            async move { client.commit(&dev_signer(member), *round, commitment).await }
        }))
        .await
        .expect("members commit during the commit period");
        voted.push(Voted {
            committee: view.committee.clone(),
            commit_until,
            reveal_until,
        });
    }
    for ((round, verdict), voted) in rounds.iter().zip(&voted) {
        // A reveal is valid in blocks after `commit_until`: submit once that block is final.
        client.wait_for_finalized(voted.commit_until).await.unwrap();
        try_join_all(voted.committee.iter().map(|member| async move {
            client
                .reveal(
                    &dev_signer(member),
                    *round,
                    *verdict,
                    evidence(*round, member),
                    salt(*round, member),
                )
                .await
        }))
        .await
        .expect("members reveal what they committed to");
    }
    // Closed in the block after the reveal deadline.
    let last = voted.iter().map(|v| v.reveal_until).max().unwrap_or(0);
    client.wait_for_finalized(last + 1).await.unwrap();
    for (round, _) in rounds {
        assert!(
            client.round(*round).await.unwrap().is_none(),
            "round {round:?} closed"
        );
    }
    voted
}

/// Every test here gives up after this long rather than hang (a round takes about 75 s).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn within_timeout(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test finished within its timeout");
}
