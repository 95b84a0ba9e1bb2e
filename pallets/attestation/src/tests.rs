use crate::{
    account_bytes, mock::*, ActiveGateways, Error, Event, GatewayCount, GatewayKeys, GatewayStatus,
    Gateways, GenesisGateway, KeyOwners, Records, RoundOf, RoundStatus, Rounds, SeedQueue,
    SuspensionReason,
};
use capsule_pallet_traits::{
    GatewayRegistry, HardwareLevel, OnBondBelowMinimum, WithdrawalBlock, WithdrawalGuard,
};
use capsule_primitives::{
    attestation::AttestationPhase,
    ids::{EpochIndex, RoundId},
    seed::round_seed,
};
use capsule_primitives::{
    golden::{GoldenId, GoldenKind, GoldenMeasurement, PcrBank, PcrPolicy},
    keys::{key_proof_message, DevicePublicKey, DeviceSignature, FingerprintRoot, KeyRole},
    measurement::MeasurementDigest,
};
use codec::Encode;
use frame_support::{assert_noop, assert_ok, BoundedVec};
use sp_core::{ed25519, sr25519, Pair};
use sp_runtime::DispatchError;

const FINGERPRINT: FingerprintRoot = FingerprintRoot([0xf1; 32]);

/// The key pairs of gateway number `seed`.
struct Keys {
    device: ed25519::Pair,
    vrf: sr25519::Pair,
    network: ed25519::Pair,
}

fn keys(seed: u8) -> Keys {
    Keys {
        device: ed25519::Pair::from_seed(&[seed; 32]),
        vrf: sr25519::Pair::from_seed(&[seed.wrapping_add(100); 32]),
        network: ed25519::Pair::from_seed(&[seed.wrapping_add(200); 32]),
    }
}

fn message(role: KeyRole, account: u64) -> [u8; 85] {
    key_proof_message(role, &Attestation::genesis_hash(), &account_bytes(&account))
}

/// `keys` with every proof signed for `account`.
fn proven(keys: &Keys, account: u64) -> GatewayKeys {
    GatewayKeys {
        device_key: DevicePublicKey::Ed25519(keys.device.public().0),
        device_proof: DeviceSignature::Ed25519(
            keys.device.sign(&message(KeyRole::Device, account)).0,
        ),
        vrf_key: keys.vrf.public().0,
        vrf_proof: keys.vrf.sign(&message(KeyRole::Vrf, account)).0,
        network_key: keys.network.public().0,
        network_proof: keys.network.sign(&message(KeyRole::Network, account)).0,
    }
}

/// `register`, with the keys unboxed.
fn register_with(
    origin: RuntimeOrigin,
    keys: GatewayKeys,
    level: HardwareLevel,
    fingerprint: FingerprintRoot,
) -> sp_runtime::DispatchResult {
    Attestation::register(origin, Box::new(keys), level, fingerprint)
}

fn register(who: u64, seed: u8) -> Result<(), sp_runtime::DispatchError> {
    FakeBonds::bond(who);
    register_with(
        RuntimeOrigin::signed(who),
        proven(&keys(seed), who),
        HardwareLevel::GatewayHsm,
        FINGERPRINT,
    )
}

fn status(who: u64) -> Option<GatewayStatus> {
    Gateways::<Test>::get(who).map(|info| info.status)
}

#[test]
fn a_bonded_gateway_with_proven_keys_registers_as_pending() {
    ExtBuilder::default().build_and_execute(|| {
        assert_ok!(register(1, 1));
        assert_eq!(
            pallet_events()[0],
            Event::Registered {
                who: 1,
                level: HardwareLevel::GatewayHsm
            }
        );
        let info = Gateways::<Test>::get(1).unwrap();
        assert_eq!(info.status, GatewayStatus::Pending);
        assert_eq!(info.fingerprint, FINGERPRINT);
        assert_eq!(info.vrf_key, keys(1).vrf.public().0);
        assert_eq!(GatewayCount::<Test>::get(), 1);
        assert!(!Attestation::is_active(&1));
        assert!(Attestation::active_gateways().is_empty());
        assert_eq!(
            Attestation::withdrawal_block(&1),
            Some(WithdrawalBlock::SubjectOfOpenRound),
            "its registration round is open"
        );
    });
}

#[test]
fn a_p256_device_key_registers() {
    use p256::ecdsa::{signature::hazmat::PrehashSigner, Signature, SigningKey};
    ExtBuilder::default().build_and_execute(|| {
        let signing = SigningKey::from_slice(&[0x33; 32]).unwrap();
        let public: [u8; 33] = signing
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .try_into()
            .unwrap();
        let digest = capsule_primitives::hashing::sha256(&message(KeyRole::Device, 5));
        let signature: Signature = signing.sign_prehash(&digest).unwrap();
        let mut gateway = proven(&keys(5), 5);
        gateway.device_key = DevicePublicKey::EcdsaP256(public);
        gateway.device_proof = DeviceSignature::EcdsaP256(signature.to_bytes().into());
        FakeBonds::bond(5);
        assert_ok!(register_with(
            RuntimeOrigin::signed(5),
            gateway,
            HardwareLevel::HpcTpm,
            FINGERPRINT
        ));
    });
}

#[test]
fn registration_errors_change_nothing() {
    ExtBuilder::default().build_and_execute(|| {
        let origin = RuntimeOrigin::signed(1);
        let level = HardwareLevel::GatewayHsm;
        assert_noop!(
            register_with(origin.clone(), proven(&keys(1), 1), level, FINGERPRINT),
            Error::<Test>::InsufficientBond
        );
        FakeBonds::bond(1);
        // Proofs signed for account 2 do not prove anything for account 1.
        assert_noop!(
            register_with(origin.clone(), proven(&keys(1), 2), level, FINGERPRINT),
            Error::<Test>::InvalidDeviceProof
        );
        let mut bad = proven(&keys(1), 1);
        bad.vrf_proof = proven(&keys(1), 2).vrf_proof;
        assert_noop!(
            register_with(origin.clone(), bad, level, FINGERPRINT),
            Error::<Test>::InvalidVrfProof
        );
        let mut bad = proven(&keys(1), 1);
        bad.network_proof = bad.vrf_proof;
        assert_noop!(
            register_with(origin.clone(), bad, level, FINGERPRINT),
            Error::<Test>::InvalidNetworkProof
        );
        let mut bad = proven(&keys(1), 1);
        bad.device_proof = DeviceSignature::EcdsaP256([0; 64]);
        assert_noop!(
            register_with(origin.clone(), bad, level, FINGERPRINT),
            Error::<Test>::InvalidDeviceProof
        );
        FakeReputation::forbid_software();
        assert_noop!(
            register_with(
                origin.clone(),
                proven(&keys(1), 1),
                HardwareLevel::Software,
                FINGERPRINT
            ),
            Error::<Test>::LevelNotAllowed
        );
        assert_ok!(register(1, 1));
        assert_noop!(register(1, 9), Error::<Test>::AlreadyRegistered);
        assert_noop!(
            register_with(
                RuntimeOrigin::root(),
                proven(&keys(2), 2),
                level,
                FINGERPRINT
            ),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn no_key_belongs_to_two_gateways() {
    ExtBuilder::default().build_and_execute(|| {
        assert_ok!(register(1, 1));
        // Account 2 holds gateway 1's device key too and proves it for itself: still refused.
        let mut reused = proven(&keys(2), 2);
        reused.device_key = proven(&keys(1), 2).device_key;
        reused.device_proof = proven(&keys(1), 2).device_proof;
        FakeBonds::bond(2);
        assert_noop!(
            register_with(
                RuntimeOrigin::signed(2),
                reused,
                HardwareLevel::GatewayHsm,
                FINGERPRINT
            ),
            Error::<Test>::KeyInUse
        );
        let mut reused = proven(&keys(2), 2);
        reused.network_key = keys(1).network.public().0;
        reused.network_proof = keys(1).network.sign(&message(KeyRole::Network, 2)).0;
        assert_noop!(
            register_with(
                RuntimeOrigin::signed(2),
                reused,
                HardwareLevel::GatewayHsm,
                FINGERPRINT
            ),
            Error::<Test>::KeyInUse
        );
    });
}

#[test]
fn the_registry_is_bounded() {
    ExtBuilder::default().build_and_execute(|| {
        for who in 1..=u64::from(MAX_GATEWAYS) {
            run_to_block(who);
            assert_ok!(register(who, who as u8));
        }
        assert_noop!(register(99, 99), Error::<Test>::TooManyGateways);
    });
}

#[test]
fn root_activates_and_the_registry_lists_active_gateways() {
    ExtBuilder::default().build_and_execute(|| {
        assert_ok!(register(1, 1));
        assert_noop!(
            Attestation::force_activate(RuntimeOrigin::signed(1), 1),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Attestation::force_activate(RuntimeOrigin::root(), 2),
            Error::<Test>::NotRegistered
        );
        assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
        assert_eq!(last_event(), Event::Activated { who: 1 });
        assert_noop!(
            Attestation::force_activate(RuntimeOrigin::root(), 1),
            Error::<Test>::AlreadyActive
        );
        assert!(Attestation::is_active(&1));
        assert_eq!(
            Attestation::active_gateways().into_inner(),
            vec![(1, HardwareLevel::GatewayHsm)]
        );
        assert_eq!(Attestation::withdrawal_block(&1), None);
    });
}

#[test]
fn a_bond_below_the_minimum_suspends_an_active_gateway() {
    ExtBuilder::default().build_and_execute(|| {
        assert_ok!(register(1, 1));
        assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
        Attestation::on_bond_below_minimum(&1);
        assert_eq!(
            last_event(),
            Event::Suspended {
                who: 1,
                reason: SuspensionReason::BondBelowMinimum
            }
        );
        assert_eq!(status(1), Some(GatewayStatus::Suspended));
        assert!(ActiveGateways::<Test>::get().is_empty());
        let events = System::events().len();
        Attestation::on_bond_below_minimum(&1);
        Attestation::on_bond_below_minimum(&42);
        assert_eq!(
            System::events().len(),
            events,
            "nothing to do twice, or for a stranger"
        );
        // Root may bring it back.
        assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
    });
}

#[test]
fn deregistering_frees_the_keys_but_not_during_the_registration_round() {
    ExtBuilder::default().build_and_execute(|| {
        assert_noop!(
            Attestation::deregister(RuntimeOrigin::signed(1)),
            Error::<Test>::NotRegistered
        );
        assert_ok!(register(1, 1));
        assert_noop!(
            Attestation::deregister(RuntimeOrigin::signed(1)),
            Error::<Test>::SubjectOfOpenRound
        );
        assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
        assert_ok!(Attestation::deregister(RuntimeOrigin::signed(1)));
        assert_eq!(last_event(), Event::Deregistered { who: 1 });
        assert_eq!(GatewayCount::<Test>::get(), 0);
        assert_eq!(KeyOwners::<Test>::iter().count(), 0);
        assert!(Attestation::active_gateways().is_empty());
        // The same keys may now serve another account.
        let mut moved = proven(&keys(1), 2);
        moved.vrf_key = keys(1).vrf.public().0;
        FakeBonds::bond(2);
        assert_ok!(register_with(
            RuntimeOrigin::signed(2),
            moved,
            HardwareLevel::GatewayHsm,
            FINGERPRINT
        ));
    });
}

#[test]
fn genesis_gateways_are_active_from_the_first_block() {
    let k = keys(7);
    let gateway = GenesisGateway {
        account: 7,
        device_key: DevicePublicKey::Ed25519(k.device.public().0).encode(),
        vrf_key: k.vrf.public().0,
        network_key: k.network.public().0,
        level: HardwareLevel::Software,
        fingerprint: [3; 32],
    };
    ExtBuilder::default()
        .with_genesis_gateway(gateway)
        .build_and_execute(|| {
            assert!(Attestation::is_active(&7));
            assert_eq!(Attestation::active_gateways().len(), 1);
            // Its keys are taken.
            FakeBonds::bond(8);
            let mut reused = proven(&keys(8), 8);
            reused.vrf_key = k.vrf.public().0;
            reused.vrf_proof = k.vrf.sign(&message(KeyRole::Vrf, 8)).0;
            assert_noop!(
                register_with(
                    RuntimeOrigin::signed(8),
                    reused,
                    HardwareLevel::GatewayHsm,
                    FINGERPRINT
                ),
                Error::<Test>::KeyInUse
            );
        });
}

#[test]
fn genesis_gateway_json_uses_hex_device_keys() {
    let json = r#"{"account":7,"device_key":"0x020101010101010101010101010101010101010101010101010101010101010101",
        "vrf_key":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
        "network_key":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
        "level":"HpcTpm","fingerprint":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}"#;
    let gateway: GenesisGateway<u64> = serde_json::from_str(json).unwrap();
    assert_eq!(
        gateway.device_key,
        DevicePublicKey::Ed25519([1; 32]).encode()
    );
    assert_eq!(gateway.level, HardwareLevel::HpcTpm);
}

fn pcr_policy(pcrs: Vec<(u8, [u8; 32])>) -> GoldenMeasurement {
    GoldenMeasurement::HpcPcrPolicy(PcrPolicy {
        image: MeasurementDigest([1; 32]),
        bank: PcrBank::Sha256,
        pcrs: BoundedVec::truncate_from(pcrs),
    })
}

#[test]
fn root_adds_and_retires_golden_measurements_within_bounds() {
    ExtBuilder::default().build_and_execute(|| {
        let os = |byte| GoldenMeasurement::GatewayOs(MeasurementDigest([byte; 32]));
        assert_noop!(
            Attestation::add_golden(RuntimeOrigin::signed(1), os(1)),
            DispatchError::BadOrigin
        );
        assert_ok!(Attestation::add_golden(RuntimeOrigin::root(), os(1)));
        assert_eq!(
            last_event(),
            Event::GoldenAdded {
                id: os(1).id(),
                kind: GoldenKind::GatewayOs
            }
        );
        assert_noop!(
            Attestation::add_golden(RuntimeOrigin::root(), os(1)),
            Error::<Test>::GoldenExists
        );
        assert_ok!(Attestation::add_golden(RuntimeOrigin::root(), os(2)));
        assert_noop!(
            Attestation::add_golden(RuntimeOrigin::root(), os(3)),
            Error::<Test>::TooManyGolden
        );
        // Other kinds have their own bound.
        assert_ok!(Attestation::add_golden(
            RuntimeOrigin::root(),
            pcr_policy(vec![(0, [9; 32])])
        ));
        assert_noop!(
            Attestation::add_golden(
                RuntimeOrigin::root(),
                pcr_policy(vec![(4, [9; 32]), (1, [9; 32])])
            ),
            Error::<Test>::MalformedGolden
        );
        assert_ok!(Attestation::retire_golden(
            RuntimeOrigin::root(),
            os(1).id()
        ));
        assert_eq!(
            last_event(),
            Event::GoldenRetired {
                id: os(1).id(),
                kind: GoldenKind::GatewayOs
            }
        );
        assert_noop!(
            Attestation::retire_golden(RuntimeOrigin::root(), GoldenId([0; 32])),
            Error::<Test>::UnknownGolden
        );
        assert_ok!(Attestation::add_golden(RuntimeOrigin::root(), os(3)));
    });
}

#[test]
fn registration_opens_a_round_seeded_from_the_next_blocks_vrf_outputs() {
    ExtBuilder::default().build_and_execute(|| {
        FakeSnapshots::set(vec![(10, 1), (11, 1), (12, 1), (13, 1), (1, 100)]);
        assert_ok!(register(1, 1));
        assert_eq!(
            last_event(),
            Event::RoundOpened {
                round: RoundId(0),
                subject: 1,
                phase: AttestationPhase::Registration,
                seeded_at: 1 + SEED_BLOCKS
            }
        );
        assert_eq!(RoundOf::<Test>::get(1), Some(RoundId(0)));
        let round = Rounds::<Test>::get(RoundId(0)).unwrap();
        assert_eq!(
            round.status,
            RoundStatus::AwaitingSeed {
                due: 1 + SEED_BLOCKS
            }
        );
        assert!(round.seed.is_none() && round.committee.is_empty());

        run_to_block(SEED_BLOCKS);
        assert!(
            Rounds::<Test>::get(RoundId(0)).unwrap().seed.is_none(),
            "not before L blocks"
        );
        run_to_block(1 + SEED_BLOCKS);
        let round = Rounds::<Test>::get(RoundId(0)).unwrap();
        let outputs: Vec<[u8; 32]> = (2..=1 + SEED_BLOCKS)
            .map(BlockNumberRandomness::at)
            .collect();
        assert_eq!(round.seed, Some(round_seed(RoundId(0), &outputs)));
        assert_eq!(round.committee.len() as u32, COMMITTEE_SIZE);
        assert!(
            !round.committee.contains(&1),
            "the subject never sits on its own committee"
        );
        let commit_until = 1 + SEED_BLOCKS + COMMIT_PERIOD;
        assert_eq!(
            round.status,
            RoundStatus::Voting {
                commit_until,
                reveal_until: commit_until + REVEAL_PERIOD
            }
        );
        assert_eq!(
            last_event(),
            Event::CommitteeDrawn {
                round: RoundId(0),
                committee: round.committee.clone()
            }
        );
        assert!(SeedQueue::<Test>::get(1 + SEED_BLOCKS).is_empty());
    });
}

#[test]
fn committees_skip_ineligible_gateways_and_shrink_to_who_is_left() {
    ExtBuilder::default().build_and_execute(|| {
        FakeSnapshots::set(vec![(10, 5), (11, 5), (12, 5)]);
        FakeSnapshots::make_ineligible(11);
        assert_ok!(register(1, 1));
        run_to_block(1 + SEED_BLOCKS);
        let mut committee = Rounds::<Test>::get(RoundId(0))
            .unwrap()
            .committee
            .into_inner();
        committee.sort();
        assert_eq!(committee, vec![10, 12]);
    });
}

#[test]
fn a_round_with_no_eligible_committee_goes_to_root() {
    ExtBuilder::default().build_and_execute(|| {
        FakeSnapshots::set(vec![(1, 5)]);
        assert_ok!(register(1, 1));
        run_to_block(1 + SEED_BLOCKS);
        assert_eq!(last_event(), Event::RoundToRoot { round: RoundId(0) });
        assert_eq!(
            Rounds::<Test>::get(RoundId(0)).unwrap().status,
            RoundStatus::AwaitingRoot
        );
        // Root settles it by activating the gateway.
        assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
        assert!(Rounds::<Test>::get(RoundId(0)).is_none());
        assert!(RoundOf::<Test>::get(1).is_none());
    });
}

#[test]
fn rounds_opened_per_block_are_capped() {
    ExtBuilder::default().build_and_execute(|| {
        for who in 1..=u64::from(MAX_ROUNDS_PER_BLOCK) {
            assert_ok!(register(who, who as u8));
        }
        let who = u64::from(MAX_ROUNDS_PER_BLOCK) + 1;
        assert_noop!(register(who, who as u8), Error::<Test>::TooManyRounds);
        run_to_block(2);
        assert_ok!(register(who, who as u8));
        assert_eq!(
            RoundOf::<Test>::get(who),
            Some(RoundId(u64::from(MAX_ROUNDS_PER_BLOCK)))
        );
    });
}

#[test]
fn one_open_round_per_subject() {
    ExtBuilder::default().build_and_execute(|| {
        assert_ok!(register(1, 1));
        assert_noop!(
            Attestation::open_round(&1, AttestationPhase::Audit, None, Some(2), None),
            Error::<Test>::RoundAlreadyOpen
        );
    });
}

mod voting {
    use super::*;
    use crate::{tally, MemberVote};
    use capsule_pallet_traits::{RoundOutcome, VoteAlignment};
    use capsule_primitives::attestation::{vote_commitment, Verdict};

    const ROUND: RoundId = RoundId(0);
    const SEEDED: u64 = 1 + SEED_BLOCKS;
    const COMMIT_UNTIL: u64 = SEEDED + COMMIT_PERIOD;
    const REVEAL_UNTIL: u64 = COMMIT_UNTIL + REVEAL_PERIOD;

    fn salt(member: u64) -> [u8; 32] {
        [member as u8 ^ 0xaa; 32]
    }

    fn evidence(member: u64) -> [u8; 32] {
        [member as u8; 32]
    }

    fn evidence_of(member: u64) -> [u8; 32] {
        evidence(member)
    }

    fn commitment(member: u64, verdict: Verdict, evidence: [u8; 32]) -> [u8; 32] {
        vote_commitment(
            ROUND,
            &account_bytes(&member),
            verdict,
            &evidence,
            &salt(member),
        )
    }

    fn commit(member: u64, verdict: Verdict) -> sp_runtime::DispatchResult {
        Attestation::commit(
            RuntimeOrigin::signed(member),
            ROUND,
            commitment(member, verdict, evidence(member)),
        )
    }

    fn reveal(member: u64, verdict: Verdict) -> sp_runtime::DispatchResult {
        Attestation::reveal(
            RuntimeOrigin::signed(member),
            ROUND,
            verdict,
            evidence(member),
            salt(member),
        )
    }

    /// Gateway 1 registers; the snapshot holds `members`, all of whom sit when there are at
    /// most `COMMITTEE_SIZE`.
    fn seated(members: &[u64]) {
        FakeSnapshots::set(members.iter().map(|m| (*m, 1)).collect());
        assert_ok!(register(1, 1));
        run_to_block(SEEDED);
        reputation_calls();
    }

    fn committee() -> Vec<u64> {
        Rounds::<Test>::get(ROUND).unwrap().committee.into_inner()
    }

    /// Each member commits `verdict` (`None`: stays away), then reveals it; the round closes.
    fn vote_and_close(votes: &[(u64, Option<Verdict>)]) {
        for (member, verdict) in votes {
            if let Some(verdict) = verdict {
                assert_ok!(commit(*member, *verdict));
            }
        }
        run_to_block(COMMIT_UNTIL + 1);
        for (member, verdict) in votes {
            if let Some(verdict) = verdict {
                assert_ok!(reveal(*member, *verdict));
            }
        }
        run_to_block(REVEAL_UNTIL + 1);
    }

    #[test]
    fn a_unanimous_pass_activates_the_gateway_and_counts_every_vote() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11, 12]);
            assert_ok!(commit(10, Verdict::Pass));
            assert_eq!(
                last_event(),
                Event::Committed {
                    round: ROUND,
                    member: 10
                }
            );
            assert_ok!(commit(11, Verdict::Pass));
            assert_ok!(commit(12, Verdict::Pass));
            run_to_block(COMMIT_UNTIL + 1);
            assert_ok!(reveal(10, Verdict::Pass));
            assert_eq!(
                last_event(),
                Event::Revealed {
                    round: ROUND,
                    member: 10,
                    verdict: Verdict::Pass
                }
            );
            assert_ok!(reveal(11, Verdict::Pass));
            assert_eq!(
                last_event(),
                Event::OutcomeReached {
                    round: ROUND,
                    verdict: Verdict::Pass
                }
            );
            assert_ok!(reveal(12, Verdict::Pass));
            assert!(
                status(1) == Some(GatewayStatus::Pending),
                "nothing settles before the deadline"
            );
            run_to_block(REVEAL_UNTIL + 1);
            let Event::RoundClosed {
                record,
                committee,
                passes,
                fails,
            } = last_event()
            else {
                panic!("the round closed")
            };
            assert_eq!((committee, passes, fails), (3, 3, 0));
            assert_eq!(record.round, ROUND);
            assert_eq!(record.subject, 1);
            assert_eq!(record.phase, AttestationPhase::Registration);
            assert_eq!(record.outcome, RoundOutcome::Passed);
            assert_eq!(record.closed_at, REVEAL_UNTIL + 1);
            let mut evidence = record.evidence.clone().into_inner();
            evidence.sort();
            assert_eq!(
                evidence,
                vec![evidence_of(10), evidence_of(11), evidence_of(12)]
            );
            assert_eq!(Records::<Test>::get(1).into_inner(), vec![record]);
            assert_eq!(status(1), Some(GatewayStatus::Active));
            assert!(Attestation::is_active(&1));
            let mut calls = reputation_calls();
            calls[..3].sort_by_key(|call| format!("{call:?}"));
            assert_eq!(
                calls,
                vec![
                    ReputationCall::Vote(10, VoteAlignment::WithOutcome),
                    ReputationCall::Vote(11, VoteAlignment::WithOutcome),
                    ReputationCall::Vote(12, VoteAlignment::WithOutcome),
                    ReputationCall::Passed(1),
                    ReputationCall::Level(1, HardwareLevel::GatewayHsm),
                ]
            );
            assert_eq!(closed_rounds(), vec![(ROUND, 1, RoundOutcome::Passed)]);
            assert!(RoundOf::<Test>::get(1).is_none() && Rounds::<Test>::get(ROUND).is_none());
            assert_eq!(Attestation::withdrawal_block(&1), None);
        });
    }

    #[test]
    fn voting_errors_change_nothing() {
        ExtBuilder::default().build_and_execute(|| {
            FakeSnapshots::set(vec![(10, 1), (11, 1), (12, 1)]);
            assert_ok!(register(1, 1));
            assert_noop!(commit(10, Verdict::Pass), Error::<Test>::NotAMember);
            run_to_block(SEEDED);
            assert_noop!(
                Attestation::commit(RuntimeOrigin::signed(10), RoundId(9), [0; 32]),
                Error::<Test>::UnknownRound
            );
            assert_noop!(commit(99, Verdict::Pass), Error::<Test>::NotAMember);
            assert_noop!(commit(1, Verdict::Pass), Error::<Test>::NotAMember);
            assert_ok!(commit(10, Verdict::Pass));
            assert_noop!(commit(10, Verdict::Fail), Error::<Test>::AlreadyCommitted);
            assert_noop!(reveal(10, Verdict::Pass), Error::<Test>::NotInRevealPhase);
            // Member 12 commits to member 10's evidence digest.
            assert_ok!(Attestation::commit(
                RuntimeOrigin::signed(12),
                ROUND,
                commitment(12, Verdict::Pass, evidence(10))
            ));
            run_to_block(COMMIT_UNTIL + 1);
            assert_noop!(commit(11, Verdict::Pass), Error::<Test>::NotInCommitPhase);
            assert_noop!(reveal(11, Verdict::Pass), Error::<Test>::NotCommitted);
            assert_noop!(reveal(10, Verdict::Fail), Error::<Test>::RevealMismatch);
            assert_noop!(
                Attestation::reveal(
                    RuntimeOrigin::signed(10),
                    ROUND,
                    Verdict::Pass,
                    evidence(10),
                    [0; 32]
                ),
                Error::<Test>::RevealMismatch
            );
            assert_ok!(reveal(10, Verdict::Pass));
            assert_noop!(reveal(10, Verdict::Pass), Error::<Test>::AlreadyRevealed);
            assert_noop!(
                Attestation::reveal(
                    RuntimeOrigin::signed(12),
                    ROUND,
                    Verdict::Pass,
                    evidence(10),
                    salt(12)
                ),
                Error::<Test>::EvidenceReplayed
            );
            // One reveal of three: the round is drawn again, and the old seats are gone.
            run_to_block(REVEAL_UNTIL + 1);
            assert_noop!(reveal(11, Verdict::Pass), Error::<Test>::NotAMember);
        });
    }

    #[test]
    fn exactly_two_thirds_decides_and_the_minority_loses_a_little() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11, 12]);
            vote_and_close(&[
                (10, Some(Verdict::Pass)),
                (11, Some(Verdict::Fail)),
                (12, Some(Verdict::Pass)),
            ]);
            assert_eq!(status(1), Some(GatewayStatus::Active));
            assert!(reputation_calls()
                .contains(&ReputationCall::Vote(11, VoteAlignment::AgainstOutcome)));
        });
    }

    #[test]
    fn a_fail_from_a_full_committee_slashes_and_locks_out() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11, 12]);
            vote_and_close(&[
                (10, Some(Verdict::Fail)),
                (11, Some(Verdict::Fail)),
                (12, None),
            ]);
            assert_eq!(slashes(), vec![(1, ROUND, None)]);
            assert_eq!(status(1), Some(GatewayStatus::LockedOut));
            let calls = reputation_calls();
            assert!(calls.contains(&ReputationCall::Failed(1)));
            assert!(calls.contains(&ReputationCall::Vote(12, VoteAlignment::Absent)));
            assert_eq!(closed_rounds(), vec![(ROUND, 1, RoundOutcome::Failed)]);
        });
    }

    #[test]
    fn a_fail_from_a_committee_below_min_slash_committee_only_suspends() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11]);
            assert_eq!(committee().len() as u32, 2);
            vote_and_close(&[(10, Some(Verdict::Fail)), (11, Some(Verdict::Fail))]);
            assert!(slashes().is_empty(), "not slashed");
            assert_eq!(status(1), Some(GatewayStatus::Suspended));
            assert!(!reputation_calls().contains(&ReputationCall::Failed(1)));
            assert!(pallet_events().contains(&Event::Suspended {
                who: 1,
                reason: SuspensionReason::FailedBeforeSmallCommittee
            }));
        });
    }

    #[test]
    fn too_few_reveals_reopen_once_with_a_doubled_committee_then_go_to_root() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11, 12, 13, 14, 15, 16]);
            let first = committee();
            assert_eq!(first.len() as u32, COMMITTEE_SIZE);
            vote_and_close(&[
                (first[0], Some(Verdict::Pass)),
                (first[1], Some(Verdict::Fail)),
                (first[2], None),
            ]);
            let reopened_at = REVEAL_UNTIL + 1;
            assert_eq!(
                last_event(),
                Event::RoundReopened {
                    round: ROUND,
                    seeded_at: reopened_at + SEED_BLOCKS
                }
            );
            assert!(
                reputation_calls().is_empty(),
                "nothing is counted until the round closes"
            );
            run_to_block(reopened_at + SEED_BLOCKS);
            let second = committee();
            assert_eq!(second.len() as u32, 2 * COMMITTEE_SIZE);
            // Nobody votes the second time.
            run_to_block(reopened_at + SEED_BLOCKS + COMMIT_PERIOD + REVEAL_PERIOD + 1);
            assert_eq!(closed_rounds(), vec![(ROUND, 1, RoundOutcome::ToRoot)]);
            assert!(pallet_events().contains(&Event::RoundToRoot { round: ROUND }));
            assert_eq!(status(1), Some(GatewayStatus::Pending), "root decides");
            let absent = reputation_calls()
                .into_iter()
                .filter(|call| matches!(call, ReputationCall::Vote(_, VoteAlignment::Absent)))
                .count();
            assert_eq!(absent, second.len());
            assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
        });
    }

    #[test]
    fn votes_are_stored_seat_by_seat() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11, 12]);
            assert_ok!(commit(11, Verdict::Pass));
            let round = Rounds::<Test>::get(ROUND).unwrap();
            let seat = round.committee.iter().position(|m| *m == 11).unwrap();
            assert_eq!(
                round.votes[seat].commitment,
                Some(commitment(11, Verdict::Pass, evidence(11)))
            );
            assert_eq!(
                round
                    .votes
                    .iter()
                    .filter(|v| **v == MemberVote::default())
                    .count(),
                2
            );
            assert_eq!(tally::quorum(round.committee.len() as u32), 2);
        });
    }

    /// Runs an audit round about gateway 1 in which members 10, 11, 12 reveal Pass with the
    /// given evidence; returns the round id.
    /// Takes `round`, opened at the current block, through seeding, then members 10, 11
    /// and 12 commit and reveal `verdict` with `evidence_of(member)`, then closing. Stops at
    /// the first refused reveal and returns its error.
    fn vote_through(
        round: RoundId,
        verdict: Verdict,
        evidence_of: impl Fn(u64) -> [u8; 32],
    ) -> sp_runtime::DispatchResult {
        let start = System::block_number();
        run_to_block(start + SEED_BLOCKS);
        for member in [10, 11, 12] {
            let c = vote_commitment(
                round,
                &account_bytes(&member),
                verdict,
                &evidence_of(member),
                &salt(member),
            );
            assert_ok!(Attestation::commit(RuntimeOrigin::signed(member), round, c));
        }
        run_to_block(start + SEED_BLOCKS + COMMIT_PERIOD + 1);
        for member in [10, 11, 12] {
            Attestation::reveal(
                RuntimeOrigin::signed(member),
                round,
                verdict,
                evidence_of(member),
                salt(member),
            )?;
        }
        run_to_block(start + SEED_BLOCKS + COMMIT_PERIOD + REVEAL_PERIOD + 1);
        Ok(())
    }

    /// An audit of gateway 1 with no reporter, every member revealing Pass.
    fn audit_with(
        evidence_of: impl Fn(u64) -> [u8; 32],
    ) -> Result<RoundId, sp_runtime::DispatchError> {
        let round = Attestation::open_round(&1, AttestationPhase::Audit, None, None, None)
            .expect("no round is open");
        vote_through(round, Verdict::Pass, evidence_of).map(|()| round)
    }

    #[test]
    fn evidence_in_recent_records_cannot_be_revealed_again_and_records_are_bounded() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11, 12]);
            vote_and_close(&[
                (10, Some(Verdict::Pass)),
                (11, Some(Verdict::Pass)),
                (12, Some(Verdict::Pass)),
            ]);
            assert_eq!(Records::<Test>::get(1).len(), 1);
            // An audit whose evidence repeats the registration round's is refused.
            assert_eq!(
                audit_with(evidence),
                Err(Error::<Test>::EvidenceReplayed.into())
            );
            // It closes without supermajority, is drawn again, then goes to root.
            run_to_block(
                System::block_number() + 2 * (SEED_BLOCKS + COMMIT_PERIOD + REVEAL_PERIOD),
            );
            assert!(RoundOf::<Test>::get(1).is_none());
            assert_eq!(Records::<Test>::get(1).len() as u32, MAX_RECORDS);
            // Fresh evidence is fine, and the oldest record makes way.
            let fresh = |tag: u8| move |member: u64| [member as u8 ^ tag; 32];
            let round = audit_with(fresh(0x10)).unwrap();
            let records = Records::<Test>::get(1);
            assert_eq!(records.len() as u32, MAX_RECORDS);
            assert_eq!(records.last().unwrap().round, round);
            assert_eq!(records.last().unwrap().outcome, RoundOutcome::Passed);
            assert_ne!(
                records[0].round, ROUND,
                "the registration record was dropped"
            );
            // Its evidence is no longer remembered.
            assert!(audit_with(evidence).is_ok());
        });
    }

    fn fees_held(who: u64) -> u64 {
        use frame_support::traits::fungible::InspectHold;
        Balances::balance_on_hold(&crate::HoldReason::RoundFees.into(), &who)
    }

    fn free(who: u64) -> u64 {
        use frame_support::traits::fungible::Inspect;
        Balances::balance(&who)
    }

    #[test]
    fn the_registrant_holds_the_fees_and_each_revealer_is_paid_whatever_its_verdict() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11, 12]);
            let deposit = Attestation::fee_deposit();
            assert_eq!(deposit, VERIFIER_FEE * 3 * u64::from(COMMITTEE_SIZE));
            assert_eq!(fees_held(1), deposit);
            vote_and_close(&[
                (10, Some(Verdict::Pass)),
                (11, Some(Verdict::Fail)),
                (12, Some(Verdict::Pass)),
            ]);
            assert_eq!(free(10), ENDOWMENT + VERIFIER_FEE);
            assert_eq!(
                free(11),
                ENDOWMENT + VERIFIER_FEE,
                "a minority vote is paid too"
            );
            assert_eq!(free(12), ENDOWMENT + VERIFIER_FEE);
            assert_eq!(fees_held(1), 0, "the rest of the deposit is released");
            assert_eq!(free(1), ENDOWMENT - 3 * VERIFIER_FEE);
            assert!(pallet_events().contains(&Event::VerifierPaid {
                round: ROUND,
                member: 11,
                fee: VERIFIER_FEE
            }));
        });
    }

    #[test]
    fn absent_members_earn_nothing() {
        ExtBuilder::default().build_and_execute(|| {
            seated(&[10, 11, 12]);
            vote_and_close(&[
                (10, Some(Verdict::Pass)),
                (11, Some(Verdict::Pass)),
                (12, None),
            ]);
            assert_eq!(free(12), ENDOWMENT);
            assert_eq!(free(1), ENDOWMENT - 2 * VERIFIER_FEE);
        });
    }

    #[test]
    fn registering_needs_the_fee_deposit_and_root_activation_returns_it() {
        ExtBuilder::default().build_and_execute(|| {
            // Account 30 is bonded (in the fake) but holds no balance.
            FakeBonds::bond(30);
            assert_noop!(
                register_with(
                    RuntimeOrigin::signed(30),
                    proven(&keys(30), 30),
                    HardwareLevel::GatewayHsm,
                    FINGERPRINT
                ),
                Error::<Test>::InsufficientFeeDeposit
            );
            assert_ok!(register(1, 1));
            assert_eq!(fees_held(1), Attestation::fee_deposit());
            assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
            assert_eq!(fees_held(1), 0);
            assert_eq!(free(1), ENDOWMENT);
        });
    }

    #[test]
    fn rounds_about_a_task_hold_no_fee_of_their_own() {
        ExtBuilder::default().build_and_execute(|| {
            FakeSnapshots::set(vec![(10, 1), (11, 1), (12, 1)]);
            let task = Some(capsule_primitives::ids::TaskId(4));
            let round =
                Attestation::open_round(&1, AttestationPhase::PreTask, task, None, None).unwrap();
            assert_eq!(fees_held(1), 0);
            assert_eq!(Rounds::<Test>::get(round).unwrap().fee_payer, None);
        });
    }

    #[test]
    fn an_active_gateway_reports_another_and_holds_the_audit_fees() {
        ExtBuilder::default().build_and_execute(|| {
            FakeSnapshots::set(vec![(2, 1), (10, 1), (11, 1), (12, 1)]);
            for (who, seed) in [(1, 1), (2, 2)] {
                assert_ok!(register(who, seed));
                assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), who));
            }
            let report = |reporter: u64, subject: u64| {
                Attestation::report(RuntimeOrigin::signed(reporter), subject, [0xee; 32])
            };
            assert_noop!(report(1, 1), Error::<Test>::CannotReportSelf);
            assert_noop!(report(3, 1), Error::<Test>::ReporterNotActive);
            assert_noop!(report(2, 9), Error::<Test>::NotRegistered);
            assert_ok!(report(2, 1));
            let round = RoundOf::<Test>::get(1).unwrap();
            assert_eq!(
                last_event(),
                Event::Reported {
                    round,
                    reporter: 2,
                    subject: 1,
                    evidence: [0xee; 32]
                }
            );
            assert_eq!(fees_held(2), Attestation::fee_deposit());
            assert_noop!(report(2, 1), Error::<Test>::RoundAlreadyOpen);
            assert_eq!(
                Attestation::withdrawal_block(&1),
                Some(WithdrawalBlock::SubjectOfOpenRound),
                "the subject of an audit cannot withdraw"
            );
            run_to_block(System::block_number() + SEED_BLOCKS);
            let committee = Rounds::<Test>::get(round).unwrap().committee.into_inner();
            assert!(
                !committee.contains(&2),
                "the reporter never sits on the committee"
            );
            assert!(!committee.contains(&1));
        });
    }

    #[test]
    fn a_failed_audit_slashes_with_the_reporter_named() {
        ExtBuilder::default().build_and_execute(|| {
            FakeSnapshots::set(vec![(10, 1), (11, 1), (12, 1)]);
            for (who, seed) in [(1, 1), (2, 2)] {
                assert_ok!(register(who, seed));
                assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), who));
            }
            run_to_block(2);
            assert_ok!(Attestation::report(RuntimeOrigin::signed(2), 1, [0xee; 32]));
            let round = RoundOf::<Test>::get(1).unwrap();
            assert_ok!(vote_through(round, Verdict::Fail, evidence));
            assert_eq!(slashes(), vec![(1, round, Some(2))]);
            assert_eq!(status(1), Some(GatewayStatus::LockedOut));
            assert!(!Attestation::is_active(&1));
            assert_eq!(fees_held(2), 0);
            assert_eq!(free(2), ENDOWMENT - 3 * VERIFIER_FEE);
        });
    }

    /// Runs gateway 1's open rotation (registration-phase) round with every member voting
    /// `verdict`.
    fn run_rotation_round(verdict: Verdict) {
        let round = RoundOf::<Test>::get(1).unwrap();
        assert_ok!(vote_through(round, verdict, |member| [member as u8 ^ 0x5c; 32]));
    }

    fn active_gateway_one() {
        FakeSnapshots::set(vec![(10, 1), (11, 1), (12, 1)]);
        assert_ok!(register(1, 1));
        assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
        run_to_block(2);
    }

    fn rotate(who: u64, seed: u8) -> sp_runtime::DispatchResult {
        Attestation::rotate_keys(
            RuntimeOrigin::signed(who),
            Box::new(proven(&keys(seed), who)),
        )
    }

    #[test]
    fn a_passed_rotation_changes_device_and_network_keys_now_and_the_vrf_key_two_epochs_later() {
        ExtBuilder::default().build_and_execute(|| {
            active_gateway_one();
            let old_vrf = keys(1).vrf.public().0;
            assert_ok!(rotate(1, 41));
            assert!(matches!(
                last_event(),
                Event::KeysRotationRequested { who: 1, .. }
            ));
            assert_noop!(rotate(1, 42), Error::<Test>::RoundAlreadyOpen);
            run_rotation_round(Verdict::Pass);
            assert_eq!(
                last_event_matching(|e| matches!(e, Event::KeysRotated { .. })),
                Some(Event::KeysRotated {
                    who: 1,
                    vrf_from: EpochIndex(2)
                })
            );
            let info = Gateways::<Test>::get(1).unwrap();
            assert_eq!(
                info.device_key,
                DevicePublicKey::Ed25519(keys(41).device.public().0)
            );
            assert_eq!(info.network_key, keys(41).network.public().0);
            assert_eq!(Attestation::vrf_key_for(&1, EpochIndex(1)), Some(old_vrf));
            assert_eq!(
                Attestation::vrf_key_for(&1, EpochIndex(2)),
                Some(keys(41).vrf.public().0)
            );
            // The old device key is free again; the old VRF key is not yet.
            FakeBonds::bond(2);
            let mut reuse = proven(&keys(2), 2);
            reuse.device_key = DevicePublicKey::Ed25519(keys(1).device.public().0);
            reuse.device_proof =
                DeviceSignature::Ed25519(keys(1).device.sign(&message(KeyRole::Device, 2)).0);
            assert_ok!(register_with(
                RuntimeOrigin::signed(2),
                reuse,
                HardwareLevel::GatewayHsm,
                FINGERPRINT
            ));
            assert_noop!(rotate(1, 43), Error::<Test>::RotationPending);
        });
    }

    #[test]
    fn a_failed_rotation_keeps_the_old_keys_and_frees_the_new_ones() {
        ExtBuilder::default().build_and_execute(|| {
            active_gateway_one();
            assert_ok!(rotate(1, 41));
            run_rotation_round(Verdict::Fail);
            assert!(pallet_events().contains(&Event::KeysRotationDropped { who: 1 }));
            let info = Gateways::<Test>::get(1).unwrap();
            assert_eq!(
                info.device_key,
                DevicePublicKey::Ed25519(keys(1).device.public().0)
            );
            assert!(crate::NextVrfKey::<Test>::get(1).is_none());
            // The keys it asked for are free for others.
            assert_ok!(register(2, 41));
        });
    }

    #[test]
    fn rotation_errors_change_nothing() {
        ExtBuilder::default().build_and_execute(|| {
            assert_noop!(rotate(1, 41), Error::<Test>::NotRegistered);
            FakeSnapshots::set(vec![(10, 1), (11, 1), (12, 1)]);
            assert_ok!(register(1, 1));
            assert_noop!(rotate(1, 41), Error::<Test>::NotActive);
            assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
            run_to_block(2);
            assert_ok!(register(2, 2));
            // Gateway 2's VRF key, proven by 1, is still 2's.
            let mut stolen = proven(&keys(41), 1);
            stolen.vrf_key = keys(2).vrf.public().0;
            stolen.vrf_proof = keys(2).vrf.sign(&message(KeyRole::Vrf, 1)).0;
            assert_noop!(
                Attestation::rotate_keys(RuntimeOrigin::signed(1), Box::new(stolen)),
                Error::<Test>::KeyInUse
            );
            let mut bad = proven(&keys(41), 1);
            bad.vrf_proof = proven(&keys(41), 2).vrf_proof;
            assert_noop!(
                Attestation::rotate_keys(RuntimeOrigin::signed(1), Box::new(bad)),
                Error::<Test>::InvalidVrfProof
            );
            // Keeping a key it already holds is fine.
            let mut keep = proven(&keys(41), 1);
            keep.device_key = DevicePublicKey::Ed25519(keys(1).device.public().0);
            keep.device_proof =
                DeviceSignature::Ed25519(keys(1).device.sign(&message(KeyRole::Device, 1)).0);
            assert_ok!(Attestation::rotate_keys(
                RuntimeOrigin::signed(1),
                Box::new(keep)
            ));
        });
    }
}

mod runtime_api_views {
    use super::*;
    use crate::RoundView;

    #[test]
    fn open_rounds_pages_by_id_and_drops_closed_rounds() {
        ExtBuilder::default().build_and_execute(|| {
            FakeSnapshots::set(vec![(10, 1), (11, 1), (12, 1), (13, 1), (14, 1), (15, 1)]);
            // Two rounds per block in the mock.
            assert_ok!(register(1, 1));
            assert_ok!(register(2, 2));
            run_to_block(2);
            assert_ok!(register(3, 3));
            let ids = |views: Vec<RoundView<u64, u64>>| -> Vec<u64> {
                views.iter().map(|view| view.id.0).collect()
            };
            assert_eq!(ids(Attestation::open_rounds(RoundId(0), 10)), vec![0, 1, 2]);
            assert_eq!(ids(Attestation::open_rounds(RoundId(1), 1)), vec![1]);
            assert_eq!(
                ids(Attestation::open_rounds(RoundId(3), 10)),
                Vec::<u64>::new()
            );

            let view = &Attestation::open_rounds(RoundId(0), 1)[0];
            assert_eq!(view.subject, 1);
            assert_eq!(view.phase, AttestationPhase::Registration);
            assert_eq!(
                view.status,
                RoundStatus::AwaitingSeed {
                    due: 1 + SEED_BLOCKS
                }
            );
            assert!(view.seed.is_none() && view.committee.is_empty());

            run_to_block(2 + SEED_BLOCKS);
            let round = Rounds::<Test>::get(RoundId(1)).unwrap();
            let view = &Attestation::open_rounds(RoundId(1), 1)[0];
            assert_eq!(view.seed, round.seed);
            assert!(view.seed.is_some());
            assert_eq!(view.committee, round.committee.to_vec());
            assert_eq!(view.votes.len(), view.committee.len());

            // Each member sees exactly the rounds it sits on.
            for member in 10..=15 {
                let expected: Vec<u64> = (0..3)
                    .filter(|id| {
                        Rounds::<Test>::get(RoundId(*id))
                            .unwrap()
                            .committee
                            .contains(&member)
                    })
                    .collect();
                assert_eq!(ids(Attestation::rounds_of_member(&member)), expected);
            }
            assert!(Attestation::rounds_of_member(&1).is_empty());

            // Root settles round 0 (activating its subject): it is no longer listed.
            assert_ok!(Attestation::force_activate(RuntimeOrigin::root(), 1));
            assert_eq!(ids(Attestation::open_rounds(RoundId(0), 10)), vec![1, 2]);
        });
    }

    #[test]
    fn golden_measurements_are_listed_by_kind() {
        ExtBuilder::default().build_and_execute(|| {
            let os = |byte| GoldenMeasurement::GatewayOs(MeasurementDigest([byte; 32]));
            let policy = pcr_policy(vec![(0, [9; 32])]);
            assert!(Attestation::golden_measurements(None).is_empty());
            for measurement in [os(1), os(2), policy.clone()] {
                assert_ok!(Attestation::add_golden(RuntimeOrigin::root(), measurement));
            }
            let mut all = vec![
                (os(1).id(), os(1)),
                (os(2).id(), os(2)),
                (policy.id(), policy.clone()),
            ];
            all.sort_by_key(|(id, _)| *id);
            assert_eq!(Attestation::golden_measurements(None), all);
            assert_eq!(
                Attestation::golden_measurements(Some(GoldenKind::HpcPcrPolicy)),
                vec![(policy.id(), policy)]
            );
            assert_ok!(Attestation::retire_golden(
                RuntimeOrigin::root(),
                os(1).id()
            ));
            assert_eq!(
                Attestation::golden_measurements(Some(GoldenKind::GatewayOs)),
                vec![(os(2).id(), os(2))]
            );
            assert!(Attestation::golden_measurements(Some(GoldenKind::TpmEkCaRoot)).is_empty());
        });
    }
}

mod task_market_side {
    use super::*;
    use capsule_pallet_traits::{RecentRandomness, TaskRounds, VrfKeys};
    use capsule_primitives::{ids::TaskId, keys::HpcSessionKeys};
    use frame_support::traits::fungible::InspectHold;

    #[test]
    fn a_task_round_is_bound_to_its_task_and_keys_and_holds_no_fee() {
        ExtBuilder::default().build_and_execute(|| {
            let keys = HpcSessionKeys {
                x25519: [1; 32],
                ed25519: [2; 32],
            };
            let held = |who| Balances::total_balance_on_hold(&who);
            let round = <Attestation as TaskRounds<u64>>::open_task_round(
                &5,
                AttestationPhase::PreTask,
                TaskId(3),
                keys,
            )
            .unwrap();
            let state = Rounds::<Test>::get(round).unwrap();
            assert_eq!(state.subject, 5);
            assert_eq!(state.phase, AttestationPhase::PreTask);
            assert_eq!(state.task, Some(TaskId(3)));
            assert_eq!(state.session_keys, Some(keys));
            assert_eq!(state.fee_payer, None, "the task's escrow pays its rounds");
            assert_eq!(held(5), 0);
            // One round per subject: a second task for a busy executor cannot open.
            assert_noop!(
                <Attestation as TaskRounds<u64>>::open_task_round(
                    &5,
                    AttestationPhase::PreTask,
                    TaskId(4),
                    keys
                ),
                Error::<Test>::RoundAlreadyOpen
            );
            assert_eq!(
                <Attestation as TaskRounds<u64>>::verifier_fee(),
                VERIFIER_FEE
            );
            assert_eq!(
                <Attestation as TaskRounds<u64>>::max_paid_members(),
                3 * COMMITTEE_SIZE
            );
        });
    }

    #[test]
    fn recent_randomness_is_the_seed_ring_and_vrf_keys_are_the_registry() {
        ExtBuilder::default().build_and_execute(|| {
            run_to_block(1 + SEED_BLOCKS);
            let outputs: Vec<[u8; 32]> = (2..=1 + SEED_BLOCKS)
                .map(BlockNumberRandomness::at)
                .collect();
            assert_eq!(<Attestation as RecentRandomness>::recent_outputs(), outputs);
            assert_eq!(
                <Attestation as RecentRandomness>::seed_blocks(),
                SEED_BLOCKS as u32
            );
            assert_ok!(register(1, 1));
            assert_eq!(
                <Attestation as VrfKeys<u64>>::vrf_key(&1, EpochIndex(0)),
                Some(keys(1).vrf.public().0)
            );
            assert_eq!(
                <Attestation as VrfKeys<u64>>::vrf_key(&2, EpochIndex(0)),
                None
            );
        });
    }
}
