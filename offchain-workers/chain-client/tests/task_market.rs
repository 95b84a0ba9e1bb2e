//! A task's life end to end against the release node (`--chain dev-committee`: four genesis
//! gateways, Alice, Bob, Charlie and Dave), driven as users and gateways will drive it: signed
//! extrinsics through this crate's client, with real sr25519 VRF proofs and a real Ed25519
//! session key.
//!
//! Ferdie, who is no gateway, posts a task. Every genesis gateway computes its private ticket for
//! the draw and claims if it is under the threshold; the lowest score wins. The other three
//! gateways (a committee of `MinSlashCommittee`) vote the winner's pre-task round Pass; the
//! winner submits its signed result manifest; the same committee votes the post-task round:
//! - Pass: the executor is paid the reward, the verifiers their fees, and the creator gets back
//!   the rest of the reserve.
//! - Fail: the executor is slashed and locked out, and the creator is refunded net of the fees.
//!
//! Escrow holds and balances are checked at every step. Each test takes about 60 blocks of 3 s.
//! Needs the release `capsule-node` (see `tests/common`).
use capsule_chain_client::{
    chain, chain::runtime_types::pallet_task_market::pallet::Error as TaskMarketError, AccountId32,
    ChainClient, ChainError, GatewayStatus, NewTask, RoundOutcome, TaskStatus, VrfSigner,
};
use capsule_primitives::{
    attestation::Verdict,
    capsule::{CapsuleCid, CidCodec},
    hashing::tagged_blake2_256,
    ids::{RoundId, TaskId},
    keys::HpcSessionKeys,
    measurement::ImageDigest,
    policy::PolicyDigest,
    task::{ResultManifest, TaskOutcome},
};
use ed25519_dalek::{Signer, SigningKey};
use futures::future::try_join_all;
use subxt_signer::sr25519::{dev, Keypair};

mod common;

use common::*;

const REWARD: u128 = 100 * UNIT;
/// The runtime's `VerifierFee`, paid to each revealing verifier.
const VERIFIER_FEE: u128 = UNIT;
/// What each genesis gateway bonds (`GENESIS_BOND`).
const GENESIS_BOND: u128 = 10_000 * UNIT;

/// A genesis gateway of `dev-committee`: its account, and the VRF key the preset registered
/// for it (its account key, whose secret seed is the well-known one of the dev account).
struct Gateway {
    signer: Keypair,
    vrf: VrfSigner,
}

impl Gateway {
    fn account(&self) -> AccountId32 {
        account(&self.signer)
    }

    /// The HPC session keys this gateway's agent made for `task` (derived here; the agent makes
    /// fresh ones at every boot).
    fn session_key(&self, task: TaskId) -> SigningKey {
        let mut input = self.account().0.to_vec();
        input.extend_from_slice(&task.0.to_le_bytes());
        SigningKey::from_bytes(&tagged_blake2_256(b"test/session-ed25519", &input))
    }

    fn session_keys(&self, task: TaskId) -> HpcSessionKeys {
        HpcSessionKeys {
            x25519: tagged_blake2_256(b"test/session-x25519", &task.0.to_le_bytes()),
            ed25519: self.session_key(task).verifying_key().to_bytes(),
        }
    }
}

fn hex32(hex: &str) -> [u8; 32] {
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

/// The four genesis gateways, each with the VRF key the chain knows for it.
fn genesis_gateways() -> Vec<Gateway> {
    [
        (
            dev::alice(),
            "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a",
        ),
        (
            dev::bob(),
            "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89",
        ),
        (
            dev::charlie(),
            "bc1ede780f784bb6991a585e4f6e61522c14e1cae6ad0895fb57b9a205a8f938",
        ),
        (
            dev::dave(),
            "868020ae0687dda7d57565093a69090211449845a7e11453612800b663307246",
        ),
    ]
    .into_iter()
    .map(|(signer, seed)| {
        let vrf = VrfSigner::from_seed(hex32(seed)).expect("a 32-byte seed");
        assert_eq!(
            vrf.public(),
            signer.public_key().0,
            "the secret seed is the dev account's"
        );
        Gateway { signer, vrf }
    })
    .collect()
}

fn demo_task(creator: &AccountId32) -> NewTask {
    NewTask {
        image: ImageDigest(tagged_blake2_256(b"test/image", b"intersection")),
        inputs: vec![
            CapsuleCid {
                codec: CidCodec::DagPb,
                digest: [1; 32],
            },
            CapsuleCid {
                codec: CidCodec::DagPb,
                digest: [2; 32],
            },
        ],
        policy: PolicyDigest([3; 32]),
        recipients: vec![*creator],
        timeout: 40,
    }
}

/// Runs the task's draw as the genesis gateways would: each claims if its ticket is under the
/// threshold; repeats for redraws. Returns the winner and its pre-task round, after checking
/// that the lowest ticket won.
async fn draw(client: &ChainClient, task: TaskId, gateways: &[Gateway]) -> (usize, RoundId) {
    loop {
        let state = client
            .task(task)
            .await
            .unwrap()
            .expect("the task is open (a refund after every failed draw is very unlikely)");
        match state.status {
            TaskStatus::AwaitingSeed { due } => {
                client.wait_for_finalized(due).await.unwrap();
            }
            TaskStatus::Claiming { closes_at, .. } => {
                let mut tickets = Vec::new();
                for (index, gateway) in gateways.iter().enumerate() {
                    if let Some(ticket) = client
                        .ticket_for(&gateway.vrf, &gateway.account(), task)
                        .await
                        .unwrap()
                    {
                        tickets.push((index, ticket));
                    }
                }
                try_join_all(tickets.iter().map(|(index, ticket)| {
                    let gateway = &gateways[*index];
                    client.claim(
                        &gateway.signer,
                        task,
                        ticket.proof,
                        gateway.session_keys(task),
                    )
                }))
                .await
                .expect("tickets under the threshold are taken within the window");
                // The winner is chosen in the block after the last claim block.
                client.wait_for_finalized(closes_at + 1).await.unwrap();
                let Some((expected, _)) = tickets
                    .iter()
                    .min_by(|a, b| a.1.ticket.cmp_score(&b.1.ticket))
                else {
                    continue; // Nobody was under the threshold: the task is drawn again.
                };
                let state = client.task(task).await.unwrap().expect("assigned");
                let TaskStatus::Assigned { claim, round } = state.status else {
                    panic!("the draw with claims assigns the task: {:?}", state.status);
                };
                assert_eq!(
                    claim.executor,
                    gateways[*expected].account(),
                    "the lowest score wins"
                );
                assert_eq!(
                    claim.session_keys.ed25519,
                    gateways[*expected].session_keys(task).ed25519
                );
                return (*expected, RoundId(round.0));
            }
            other => panic!("a new task is seeded, then claimed: {other:?}"),
        }
    }
}

/// How a test task ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cleanup {
    Passes,
    Fails,
}

async fn run_task(cleanup: Cleanup) {
    let node = start(&["--chain", "dev-committee"]);
    let client = ChainClient::connect(&node.ws_url()).await.expect("connect");
    let gateways = genesis_gateways();
    let creator = dev::ferdie();
    let creator_id = account(&creator);

    // Create: the reward and the fee reserve are held from the creator.
    let free_before = client.free_balance(&creator_id).await.unwrap();
    let created = client
        .create_task(&creator, &demo_task(&creator_id), REWARD)
        .await
        .expect("create_task");
    let task = created.task;
    let state = client.task(task).await.unwrap().expect("created");
    let reserve = state.fee_reserve;
    let escrow = REWARD + reserve;
    assert_eq!(state.reward, REWARD);
    assert!(matches!(state.status, TaskStatus::AwaitingSeed { .. }));
    assert_eq!(client.escrow_held(&creator_id).await.unwrap(), escrow);
    let free_created = client.free_balance(&creator_id).await.unwrap();
    assert!(
        free_before - free_created > escrow && free_before - free_created < escrow + UNIT,
        "the escrow and a transaction fee left the free balance: {}",
        free_before - free_created
    );

    // Seed and claim: the lowest ticket wins; its pre-task round opens.
    let (winner, pre_round) = draw(&client, task, &gateways).await;
    let executor = &gateways[winner];
    let executor_id = executor.account();
    assert_eq!(client.executing(&executor_id).await.unwrap(), Some(task));
    assert_eq!(client.escrow_held(&creator_id).await.unwrap(), escrow);

    // A result before the pre-task round passed is refused.
    let manifest = ResultManifest {
        task,
        outcome: TaskOutcome::Completed,
        results: vec![CapsuleCid {
            codec: CidCodec::Raw,
            digest: [9; 32],
        }]
        .try_into()
        .expect("one result"),
        evidence: tagged_blake2_256(b"test/cleanup-evidence", &task.0.to_le_bytes()),
    };
    let signature = executor
        .session_key(task)
        .sign(&manifest.signing_message())
        .to_bytes();
    match client
        .submit_result(&executor.signer, &manifest, signature)
        .await
    {
        Err(ChainError::Refused { error, .. }) => assert_eq!(
            *error,
            chain::Error::TaskMarket(TaskMarketError::NotRunning)
        ),
        other => panic!("a result before the pre-task round passed is refused: {other:?}"),
    }

    // The other three gateways attest the executor before the run.
    let voted = vote(&client, &[(pre_round, Verdict::Pass)]).await;
    let mut committee = voted[0].committee.clone();
    committee.sort_by_key(|a| a.0);
    let mut others: Vec<AccountId32> = gateways
        .iter()
        .map(Gateway::account)
        .filter(|a| *a != executor_id)
        .collect();
    others.sort_by_key(|a| a.0);
    assert_eq!(
        committee, others,
        "the other three gateways judge the executor"
    );
    let state = client.task(task).await.unwrap().expect("running");
    assert!(
        matches!(state.status, TaskStatus::Running { .. }),
        "{:?}",
        state.status
    );
    assert_eq!(state.fees_paid, 3 * VERIFIER_FEE, "three verifiers paid");
    assert_eq!(
        client.escrow_held(&creator_id).await.unwrap(),
        escrow - 3 * VERIFIER_FEE,
        "the verifiers' fees came out of the escrow"
    );

    // A manifest signed by another key is refused; the session key's signature is taken.
    let forged = SigningKey::from_bytes(&[7; 32])
        .sign(&manifest.signing_message())
        .to_bytes();
    match client
        .submit_result(&executor.signer, &manifest, forged)
        .await
    {
        Err(ChainError::Refused { error, .. }) => assert_eq!(
            *error,
            chain::Error::TaskMarket(TaskMarketError::BadManifestSignature)
        ),
        other => panic!("a manifest not signed by the session key is refused: {other:?}"),
    }
    let post_round = client
        .submit_result(&executor.signer, &manifest, signature)
        .await
        .expect("submit_result");
    let executor_free = client.free_balance(&executor_id).await.unwrap();
    let executor_bond = client.active_bond(&executor_id).await.unwrap();
    assert_eq!(executor_bond, GENESIS_BOND);
    assert!(matches!(
        client.task(task).await.unwrap().expect("verifying").status,
        TaskStatus::Verifying { .. }
    ));

    // The post-task (cleanup) round settles the task.
    let verdict = match cleanup {
        Cleanup::Passes => Verdict::Pass,
        Cleanup::Fails => Verdict::Fail,
    };
    vote(&client, &[(post_round, verdict)]).await;
    assert!(client.task(task).await.unwrap().is_none(), "settled");
    assert_eq!(client.executing(&executor_id).await.unwrap(), None);
    assert_eq!(client.escrow_held(&creator_id).await.unwrap(), 0);
    let fees = 6 * VERIFIER_FEE;
    let creator_back = client.free_balance(&creator_id).await.unwrap() - free_created;
    let executor_gain = client.free_balance(&executor_id).await.unwrap() - executor_free;
    let records = client.records(&executor_id).await.unwrap();
    let info = client
        .gateway(&executor_id)
        .await
        .unwrap()
        .expect("gateway");
    match cleanup {
        Cleanup::Passes => {
            assert_eq!(creator_back, reserve - fees, "the unspent reserve returns");
            assert_eq!(executor_gain, REWARD, "the executor is paid the reward");
            assert_eq!(
                client.active_bond(&executor_id).await.unwrap(),
                GENESIS_BOND
            );
            assert_eq!(info.status, GatewayStatus::Active);
            assert_eq!(
                records.last().map(|r| r.outcome.clone()),
                Some(RoundOutcome::Passed)
            );
        }
        Cleanup::Fails => {
            assert_eq!(
                creator_back,
                REWARD + reserve - fees,
                "the creator is refunded net of the fees"
            );
            assert_eq!(executor_gain, 0, "a failed executor is not paid");
            assert_eq!(
                client.active_bond(&executor_id).await.unwrap(),
                GENESIS_BOND - GENESIS_BOND / 10,
                "FailSlash takes a tenth of the executor's bond"
            );
            assert_eq!(info.status, GatewayStatus::LockedOut);
            assert_eq!(
                records.last().map(|r| r.outcome.clone()),
                Some(RoundOutcome::Failed)
            );
        }
    }
    drop(node);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_is_drawn_attested_run_and_paid() {
    within_timeout(run_task(Cleanup::Passes)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_executor_failing_its_cleanup_check_is_slashed_and_the_creator_refunded() {
    within_timeout(run_task(Cleanup::Fails)).await;
}
