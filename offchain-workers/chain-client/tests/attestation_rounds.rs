//! Attestation rounds end to end against the release node, driven as the gateways' verifier
//! services will drive them: through this crate's client, the runtime API and signed extrinsics.
//!
//! - On `--dev` (one genesis gateway, Alice): Dave and Eve bond and register; Alice, drawn as
//!   the whole committee, commits and reveals Pass for Dave and Fail for Eve. Dave becomes
//!   Active; Eve, failed by a committee smaller than `MinSlashCommittee`, is suspended and keeps
//!   her whole bond.
//! - On `--chain dev-committee` (four genesis gateways, more than `MinSlashCommittee`): the same
//!   Fail for Eve slashes her bond and locks her out.
//!
//! Needs the release `capsule-node` (`cargo build --release -p capsule-node`); it is found next
//! to this test in the shared target dir, or at `$CAPSULE_NODE`. Each round lasts about 25
//! blocks of 3 s.
use capsule_chain_client::{
    chain::{self, runtime_types::pallet_attestation::pallet::Error::NotAMember},
    AccountId32, ChainClient, ChainError, GatewayStatus, RoundOutcome,
};
use capsule_primitives::attestation::Verdict;
use subxt_signer::sr25519::dev;

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn genesis_gateway_admits_one_gateway_and_a_small_committee_only_suspends_another() {
    within_timeout(async {
        let node = start(&[]);
        let client = ChainClient::connect(&node.ws_url()).await.expect("connect");
        let (dave, eve) = (dev::dave(), dev::eve());

        let dave_round = bond_and_register(&client, &dave, "dave").await;
        let eve_round = bond_and_register(&client, &eve, "eve").await;

        // A refusal comes back as the runtime's typed error, with what to do about it.
        match client.commit(&dev::bob(), dave_round, [0; 32]).await {
            Err(ChainError::Refused { error, .. }) => assert_eq!(
                *error,
                chain::Error::Attestation(NotAMember),
                "Bob is no gateway, so on no committee"
            ),
            other => panic!("a non-member's commit must be refused, got {other:?}"),
        }
        let voted = vote(
            &client,
            &[(dave_round, Verdict::Pass), (eve_round, Verdict::Fail)],
        )
        .await;

        let alice = account(&dev::alice());
        for round in &voted {
            assert_eq!(
                round.committee,
                vec![alice],
                "the genesis gateway is the committee"
            );
        }
        let dave_info = client.gateway(&account(&dave)).await.unwrap().unwrap();
        assert_eq!(dave_info.status, GatewayStatus::Active);
        let records = client.records(&account(&dave)).await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].outcome, RoundOutcome::Passed);
        assert_eq!(records[0].evidence.0, vec![evidence(dave_round, &alice)]);

        let eve_info = client.gateway(&account(&eve)).await.unwrap().unwrap();
        assert_eq!(eve_info.status, GatewayStatus::Suspended);
        assert_eq!(
            client.active_bond(&account(&eve)).await.unwrap(),
            BOND,
            "a committee smaller than MinSlashCommittee never slashes"
        );
        let records = client.records(&account(&eve)).await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].outcome, RoundOutcome::Failed);
        drop(node);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fail_from_a_committee_of_min_slash_committee_slashes() {
    within_timeout(async {
        let node = start(&["--chain", "dev-committee"]);
        let client = ChainClient::connect(&node.ws_url()).await.expect("connect");
        let eve = dev::eve();

        let round = bond_and_register(&client, &eve, "eve").await;
        let voted = vote(&client, &[(round, Verdict::Fail)]).await;

        let mut committee = voted[0].committee.clone();
        committee.sort_by_key(|a| a.0);
        let mut genesis: Vec<AccountId32> = [dev::alice(), dev::bob(), dev::charlie(), dev::dave()]
            .iter()
            .map(account)
            .collect();
        genesis.sort_by_key(|a| a.0);
        assert_eq!(committee, genesis, "all four genesis gateways are drawn");

        let info = client.gateway(&account(&eve)).await.unwrap().unwrap();
        assert_eq!(info.status, GatewayStatus::LockedOut);
        let bond = client.active_bond(&account(&eve)).await.unwrap();
        assert_eq!(
            bond,
            BOND - BOND / 10,
            "FailSlash takes a tenth of the bond"
        );
        let records = client.records(&account(&eve)).await.unwrap();
        assert_eq!(
            records.last().map(|r| r.outcome.clone()),
            Some(RoundOutcome::Failed)
        );
        drop(node);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_an_rpc_server_is_a_clear_error() {
    let error = match ChainClient::connect("ws://127.0.0.1:1").await {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(error) => error,
    };
    let message = error.to_string();
    assert!(
        message.contains("ws://127.0.0.1:1") && message.contains("capsule-node"),
        "{message}"
    );
}
