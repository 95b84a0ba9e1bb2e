use crate::{
    mock::*, Error, Event, Reputations, ScoreChange, SnapshotEpochs, Snapshots, SNAPSHOTS_KEPT,
};
use capsule_pallet_traits::{
    EpochIndex, EpochSnapshots, HardwareLevel, ReputationEvents, SnapshotEntry, VoteAlignment,
};
use frame_support::{assert_noop, assert_ok};
use HardwareLevel::{GatewayHsm, HpcTpm, Software};

fn score(who: u64) -> u32 {
    Reputation::reputation(&who).score
}

#[test]
fn passed_rounds_and_completed_tasks_raise_the_score_to_the_ceiling() {
    ExtBuilder::default()
        .with_score(2, MAX_SCORE - 4)
        .build_and_execute(|| {
            Reputation::round_passed(&1);
            assert_eq!(
                last_event(),
                Event::ScoreChanged {
                    who: 1,
                    change: ScoreChange::RoundPassed,
                    score: PASSED
                }
            );
            Reputation::task_completed(&1);
            assert_eq!(
                last_event(),
                Event::ScoreChanged {
                    who: 1,
                    change: ScoreChange::TaskCompleted,
                    score: PASSED + COMPLETED
                }
            );
            Reputation::round_passed(&2);
            assert_eq!(score(2), MAX_SCORE);
        });
}

#[test]
fn absent_and_minority_votes_lower_the_score_a_little() {
    ExtBuilder::default()
        .with_score(1, 10)
        .build_and_execute(|| {
            Reputation::vote_counted(&1, VoteAlignment::WithOutcome);
            assert!(
                pallet_events().is_empty(),
                "a vote with the outcome changes nothing"
            );
            assert_eq!(score(1), 10);
            Reputation::vote_counted(&1, VoteAlignment::AgainstOutcome);
            assert_eq!(
                last_event(),
                Event::ScoreChanged {
                    who: 1,
                    change: ScoreChange::VoteAgainstOutcome,
                    score: 7
                }
            );
            Reputation::vote_counted(&1, VoteAlignment::Absent);
            assert_eq!(score(1), 5);
            for _ in 0..5 {
                Reputation::vote_counted(&1, VoteAlignment::Absent);
            }
            assert_eq!(score(1), 0, "penalties stop at zero");
        });
}

#[test]
fn a_failed_round_resets_and_locks_until_the_lockout_expires() {
    ExtBuilder::default()
        .with_score(1, 500)
        .with_level(1, HpcTpm)
        .build_and_execute(|| {
            Reputation::round_failed(&1);
            assert_eq!(
                last_event(),
                Event::ScoreReset {
                    who: 1,
                    locked_until: 1 + LOCKOUT
                }
            );
            assert_eq!(score(1), 0);
            Reputation::round_passed(&1);
            Reputation::task_completed(&1);
            assert_eq!(score(1), 0, "nothing rises during the lockout");
            assert_eq!(Reputation::effective_score(&1), 0);
            run_to_block(LOCKOUT);
            Reputation::round_passed(&1);
            assert_eq!(score(1), 0, "still locked one block before the end");
            run_to_block(1 + LOCKOUT);
            Reputation::round_passed(&1);
            assert_eq!(score(1), PASSED);
            assert_eq!(Reputation::effective_score(&1), PASSED * 4);
        });
}

#[test]
fn the_level_multiplies_the_score() {
    ExtBuilder::default()
        .with_score(1, 100)
        .build_and_execute(|| {
            assert_eq!(
                Reputation::effective_score(&1),
                100,
                "Software counts on a dev chain"
            );
            assert_ok!(Reputation::set_hardware_level(&1, GatewayHsm));
            assert_eq!(
                last_event(),
                Event::HardwareLevelSet {
                    who: 1,
                    level: GatewayHsm
                }
            );
            assert_eq!(Reputation::effective_score(&1), 200);
            assert_ok!(Reputation::set_hardware_level(&1, HpcTpm));
            assert_eq!(Reputation::effective_score(&1), 400);
            assert_ok!(Reputation::set_hardware_level(&1, Software));
            assert_eq!(Reputation::effective_score(&1), 100);
        });
}

#[test]
fn software_counts_nothing_and_cannot_be_set_where_genesis_forbids_it() {
    ExtBuilder::default()
        .production()
        .with_score(1, 100)
        .build_and_execute(|| {
            assert_eq!(Reputation::effective_score(&1), 0);
            assert_noop!(
                Reputation::set_hardware_level(&1, Software),
                Error::<Test>::SoftwareLevelNotAllowed
            );
            assert_ok!(Reputation::set_hardware_level(&1, GatewayHsm));
            assert_eq!(Reputation::effective_score(&1), 200);
        });
}

#[test]
#[should_panic(expected = "genesis: the Software level is not allowed on this chain")]
fn production_genesis_refuses_software_levels() {
    ExtBuilder::default()
        .production()
        .with_level(1, Software)
        .build();
}

#[test]
#[should_panic(expected = "genesis: a score is above MaxScore")]
fn genesis_refuses_a_score_above_the_ceiling() {
    ExtBuilder::default().with_score(1, MAX_SCORE + 1).build();
}

#[test]
fn decay_is_lazy_and_counts_whole_periods() {
    ExtBuilder::default()
        .with_score(1, 1_000)
        .build_and_execute(|| {
            run_to_block(DECAY_PERIOD - 1);
            assert_eq!(score(1), 1_000);
            run_to_block(DECAY_PERIOD);
            assert_eq!(score(1), 900);
            run_to_block(2 * DECAY_PERIOD + 5);
            assert_eq!(score(1), 810);
            assert_eq!(
                Reputations::<Test>::get(1).unwrap().score,
                1_000,
                "reading writes nothing"
            );
            // A write applies the decay and keeps the part-period: the next step is still due at
            // 3 periods.
            Reputation::task_completed(&1);
            assert_eq!(score(1), 815);
            run_to_block(3 * DECAY_PERIOD - 1);
            assert_eq!(score(1), 815);
            run_to_block(3 * DECAY_PERIOD);
            assert_eq!(score(1), 733);
        });
}

#[test]
fn decay_across_a_very_long_gap_reaches_zero_without_a_long_loop() {
    ExtBuilder::default()
        .with_score(1, MAX_SCORE)
        .build_and_execute(|| {
            System::set_block_number(u64::MAX);
            assert_eq!(score(1), 0);
            Reputation::round_passed(&1);
            assert_eq!(score(1), PASSED);
            // A gap of 60 periods: 0.9^60 of 1000 is 1.8, rounded down.
            System::set_block_number(u64::MAX);
            let mut rep = Reputations::<Test>::get(1).unwrap();
            rep.score = 1_000;
            rep.decayed_at = u64::MAX - 60 * DECAY_PERIOD;
            Reputations::<Test>::insert(1, rep);
            assert_eq!(score(1), 1);
        });
}

#[test]
fn the_first_block_snapshots_the_current_and_the_next_epoch() {
    ExtBuilder::default()
        .with_score(1, 100)
        .with_score(2, 50)
        .with_level(2, HpcTpm)
        .with_score(3, 0)
        .build_and_execute(|| {
            FakeRegistry::set(vec![
                (1, Software),
                (2, HpcTpm),
                (3, HpcTpm),
                (4, GatewayHsm),
            ]);
            FakeBonds::set(1, 1_000);
            FakeBonds::set(2, 10);
            FakeBonds::set(3, 1_000);
            run_to_block(2);
            let snapshot = Reputation::snapshot(EpochIndex(1)).expect("next epoch's snapshot");
            assert_eq!(
                snapshot.members.into_inner(),
                vec![
                    SnapshotEntry {
                        account: 1,
                        level: Software,
                        weight: 100_000
                    },
                    SnapshotEntry {
                        account: 2,
                        level: HpcTpm,
                        weight: 2_000
                    },
                ],
                "gateways with no score or no bond carry no weight"
            );
            assert_eq!(snapshot.total_weight, 102_000);
            assert_eq!(
                Reputation::snapshot(EpochIndex(0)).unwrap().total_weight,
                102_000
            );
            assert_eq!(Reputation::current_epoch(), EpochIndex(0));
            assert_eq!(
                last_event(),
                Event::SnapshotTaken {
                    epoch: EpochIndex(1),
                    gateways: 2,
                    total_weight: 102_000
                }
            );
            let events = pallet_events().len();
            run_to_block(5);
            assert_eq!(
                pallet_events().len(),
                events,
                "no new snapshot within an epoch"
            );
        });
}

#[test]
fn changes_during_an_epoch_count_two_epochs_later() {
    ExtBuilder::default()
        .with_score(1, 100)
        .build_and_execute(|| {
            FakeRegistry::set(vec![(1, Software)]);
            FakeBonds::set(1, 10);
            run_to_block(2);
            // During epoch 0 the bond grows tenfold.
            FakeBonds::set(1, 100);
            assert_eq!(
                Reputation::snapshot(EpochIndex(0)).unwrap().total_weight,
                1_000
            );
            assert_eq!(
                Reputation::snapshot(EpochIndex(1)).unwrap().total_weight,
                1_000
            );
            start_epoch(1);
            assert_eq!(
                Reputation::snapshot(EpochIndex(1)).unwrap().total_weight,
                1_000,
                "epoch 1 keeps the snapshot fixed before the change"
            );
            assert_eq!(
                Reputation::snapshot(EpochIndex(2)).unwrap().total_weight,
                10_000
            );
        });
}

#[test]
fn snapshots_follow_the_registry_and_the_level_proven() {
    ExtBuilder::default()
        .with_score(1, 10)
        .with_score(2, 10)
        .build_and_execute(|| {
            FakeRegistry::set(vec![(1, GatewayHsm), (2, HpcTpm)]);
            FakeBonds::set(1, 1);
            FakeBonds::set(2, 1);
            assert_ok!(Reputation::set_hardware_level(&1, HpcTpm));
            assert_ok!(Reputation::set_hardware_level(&2, GatewayHsm));
            run_to_block(2);
            let members = Reputation::snapshot(EpochIndex(1)).unwrap().members;
            assert_eq!(
                members
                    .iter()
                    .map(|e| (e.account, e.level, e.weight))
                    .collect::<Vec<_>>(),
                vec![(1, GatewayHsm, 20), (2, GatewayHsm, 20)],
                "the lower of the registered and the proven level counts"
            );
            // A suspended gateway leaves the registry and the next snapshot.
            FakeRegistry::set(vec![(2, HpcTpm)]);
            start_epoch(1);
            let members = Reputation::snapshot(EpochIndex(2)).unwrap().members;
            assert_eq!(
                members.iter().map(|e| e.account).collect::<Vec<_>>(),
                vec![2]
            );
            // A failed round leaves the fixed snapshots alone but makes the gateway ineligible
            // at once, so draws skip it; the next snapshot drops it.
            assert!(Reputation::is_eligible(&2));
            assert!(!Reputation::is_eligible(&1), "left the registry");
            Reputation::round_failed(&2);
            assert!(!Reputation::is_eligible(&2));
            assert_eq!(
                Reputation::snapshot(EpochIndex(2)).unwrap().members.len(),
                1
            );
            start_epoch(2);
            assert!(Reputation::snapshot(EpochIndex(3))
                .unwrap()
                .members
                .is_empty());
        });
}

#[test]
fn only_the_last_snapshots_are_kept() {
    ExtBuilder::default().build_and_execute(|| {
        for epoch in 0..10 {
            start_epoch(epoch);
        }
        let kept: Vec<u64> = SnapshotEpochs::<Test>::get().iter().map(|e| e.0).collect();
        assert_eq!(kept, vec![7, 8, 9, 10]);
        assert_eq!(Snapshots::<Test>::iter().count(), SNAPSHOTS_KEPT as usize);
        assert!(Reputation::snapshot(EpochIndex(6)).is_none());
        // Epochs can be skipped (no block for a whole epoch): nothing is left behind.
        start_epoch(20);
        let kept: Vec<u64> = SnapshotEpochs::<Test>::get().iter().map(|e| e.0).collect();
        assert_eq!(kept, vec![9, 10, 20, 21]);
    });
}

#[test]
fn a_full_registry_fits_and_weights_saturate_at_the_type_limits() {
    ExtBuilder::default().build_and_execute(|| {
        let gateways: Vec<(u64, HardwareLevel)> = (0..u64::from(MAX_GATEWAYS))
            .map(|who| (who, HpcTpm))
            .collect();
        for (who, _) in &gateways {
            Reputations::<Test>::insert(
                who,
                crate::Reputation {
                    score: MAX_SCORE,
                    decayed_at: 1,
                    locked_until: 0,
                    level: HpcTpm,
                },
            );
            FakeBonds::set(*who, u128::MAX / 2);
        }
        FakeRegistry::set(gateways);
        run_to_block(2);
        let snapshot = Reputation::snapshot(EpochIndex(1)).unwrap();
        assert_eq!(snapshot.members.len() as u32, MAX_GATEWAYS);
        assert!(snapshot.members.iter().all(|e| e.weight == u128::MAX));
        assert_eq!(snapshot.total_weight, u128::MAX);
    });
}

#[test]
fn event_weight_covers_every_hook() {
    use crate::WeightInfo;
    let weight = <Reputation as ReputationEvents<u64>>::event_weight();
    assert!(weight.all_gte(<() as WeightInfo>::change_score()));
    assert!(weight.all_gte(<() as WeightInfo>::reset()));
    assert!(weight.all_gte(<() as WeightInfo>::set_hardware_level()));
}

#[test]
fn eligibility_needs_the_registry_a_bond_and_no_lockout() {
    ExtBuilder::default()
        .with_score(1, 10)
        .build_and_execute(|| {
            assert!(!Reputation::is_eligible(&1), "not Active");
            FakeRegistry::set(vec![(1, Software)]);
            assert!(!Reputation::is_eligible(&1), "no bond");
            FakeBonds::set(1, 1);
            assert!(Reputation::is_eligible(&1));
            Reputation::round_failed(&1);
            assert!(!Reputation::is_eligible(&1), "locked out");
            run_to_block(1 + LOCKOUT);
            assert!(
                Reputation::is_eligible(&1),
                "eligible again once the lockout ends"
            );
        });
}

#[test]
fn small_scores_keep_decaying_and_empty_records_are_dropped() {
    ExtBuilder::default()
        .with_score(1, 5)
        .build_and_execute(|| {
            run_to_block(DECAY_PERIOD);
            assert_eq!(score(1), 4, "0.9 x 5 rounds down");
            Reputation::vote_counted(&1, VoteAlignment::Absent);
            Reputation::vote_counted(&1, VoteAlignment::Absent);
            assert_eq!(score(1), 0);
            assert!(
                Reputations::<Test>::get(1).is_none(),
                "a zero Software record is not kept"
            );
            // A locked record stays until its lockout is over, whatever its score.
            Reputation::round_failed(&2);
            Reputation::vote_counted(&2, VoteAlignment::Absent);
            assert!(Reputations::<Test>::get(2).is_some());
        });
}
