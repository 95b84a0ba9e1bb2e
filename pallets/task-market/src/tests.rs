use crate::{
    mock::*, verified_output, Error, Event, HoldReason, SeedQueue, Task, TaskSpec, TaskStatus,
    Tasks,
};
use capsule_pallet_traits::{account_bytes, AttestationPhase, TaskId};
use capsule_primitives::{
    capsule::{CapsuleCid, CidCodec},
    measurement::ImageDigest,
    policy::PolicyDigest,
    seed::task_seed,
    sortition::{Threshold, Ticket, ONE},
    vrf::{VrfProofBytes, VrfTranscriptInput},
};
use frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
    BoundedVec,
};
use sp_core::Pair as _;

const CREATOR: u64 = 1;
const REWARD: u64 = 100;
const TASK: TaskId = TaskId(0);

fn spec() -> TaskSpec<Test> {
    TaskSpec::<Test> {
        image: ImageDigest([7; 32]),
        inputs: BoundedVec::truncate_from(vec![CapsuleCid {
            codec: CidCodec::DagPb,
            digest: [1; 32],
        }]),
        policy: PolicyDigest([2; 32]),
        recipients: BoundedVec::truncate_from(vec![2, 3]),
        timeout: 20,
    }
}

fn create() -> sp_runtime::DispatchResult {
    TaskMarket::create_task(RuntimeOrigin::signed(CREATOR), Box::new(spec()), REWARD)
}

fn escrow(who: u64) -> u64 {
    Balances::balance_on_hold(&HoldReason::Escrow.into(), &who)
}

fn task(id: TaskId) -> Task<Test> {
    Tasks::<Test>::get(id).expect("the task exists")
}

/// The seed and threshold of a claiming task.
fn draw(id: TaskId) -> ([u8; 32], Threshold, u64) {
    match task(id).status {
        TaskStatus::Claiming {
            seed,
            threshold,
            closes_at,
            ..
        } => (seed, threshold, closes_at),
        other => panic!("task {id:?} is not claiming: {other:?}"),
    }
}

fn claim(who: u64, id: TaskId) -> sp_runtime::DispatchResult {
    let (seed, ..) = draw(id);
    TaskMarket::claim(
        RuntimeOrigin::signed(who),
        id,
        prove(who, id, seed),
        session_keys(who),
    )
}

/// `who`'s ticket in the current draw of `id`.
fn ticket(who: u64, weight: u128, id: TaskId) -> Ticket {
    let (seed, ..) = draw(id);
    Ticket::new(prove_as(who, who, id, seed).1, weight)
}

/// Creates the task at block 1 and runs to its seeding.
fn created_and_seeded() {
    assert_ok!(create());
    run_to_block(1 + SEED_BLOCKS);
}

#[test]
fn creating_a_task_holds_reward_and_fee_reserve_and_queues_its_seed() {
    build_and_execute(|| {
        assert_ok!(create());
        assert_eq!(escrow(CREATOR), REWARD + FEE_RESERVE);
        assert_eq!(
            last_event(),
            Event::TaskCreated {
                task: TASK,
                creator: CREATOR,
                reward: REWARD,
                seeded_at: 1 + SEED_BLOCKS
            }
        );
        let stored = task(TASK);
        assert_eq!(stored.image, ImageDigest([7; 32]));
        assert_eq!(stored.recipients.to_vec(), vec![2, 3]);
        assert_eq!(
            stored.status,
            TaskStatus::AwaitingSeed {
                due: 1 + SEED_BLOCKS
            }
        );
        assert_eq!(SeedQueue::<Test>::get(1 + SEED_BLOCKS).to_vec(), vec![TASK]);
    });
}

#[test]
fn creation_errors_change_nothing() {
    build_and_execute(|| {
        let origin = || RuntimeOrigin::signed(CREATOR);
        assert_noop!(
            TaskMarket::create_task(origin(), Box::new(spec()), MIN_REWARD - 1),
            Error::<Test>::RewardTooLow
        );
        for timeout in [0, MAX_TIMEOUT + 1] {
            let spec = TaskSpec::<Test> { timeout, ..spec() };
            assert_noop!(
                TaskMarket::create_task(origin(), Box::new(spec), REWARD),
                Error::<Test>::InvalidTimeout
            );
        }
        let spec_without_recipients = TaskSpec::<Test> {
            recipients: BoundedVec::new(),
            ..spec()
        };
        assert_noop!(
            TaskMarket::create_task(origin(), Box::new(spec_without_recipients), REWARD),
            Error::<Test>::NoRecipients
        );
        assert_noop!(
            TaskMarket::create_task(origin(), Box::new(spec()), ENDOWMENT),
            Error::<Test>::InsufficientBalance
        );
        for creator in 1..=u64::from(MAX_TASKS_PER_BLOCK) {
            assert_ok!(TaskMarket::create_task(
                RuntimeOrigin::signed(creator),
                Box::new(spec()),
                REWARD
            ));
        }
        assert_noop!(create(), Error::<Test>::TooManyTasks);
    });
}

#[test]
fn a_task_is_seeded_from_the_vrf_outputs_of_the_blocks_after_its_creation() {
    build_and_execute(|| {
        FakeSnapshots::set(vec![(10, 5), (11, 15)]);
        assert_ok!(create());
        run_to_block(SEED_BLOCKS);
        assert!(matches!(task(TASK).status, TaskStatus::AwaitingSeed { .. }));
        run_to_block(1 + SEED_BLOCKS);
        let outputs: Vec<[u8; 32]> = (2..=1 + SEED_BLOCKS)
            .map(BlockNumberRandomness::at)
            .collect();
        let (seed, threshold, closes_at) = draw(TASK);
        assert_eq!(seed, task_seed(TASK, &outputs));
        assert_eq!(
            threshold,
            Threshold {
                target: 1_000 * ONE,
                total_weight: 20
            }
        );
        assert_eq!(closes_at, 1 + SEED_BLOCKS + CLAIM_WINDOW);
        assert_eq!(
            last_event(),
            Event::TaskSeeded {
                task: TASK,
                attempt: 0,
                seed,
                threshold,
                closes_at
            }
        );
    });
}

#[test]
fn the_lowest_valid_score_wins_and_its_pre_task_round_opens() {
    build_and_execute(|| {
        let members = vec![(10, 1), (11, 2), (12, 10)];
        FakeSnapshots::set(members.clone());
        created_and_seeded();
        for (who, _) in &members {
            assert_ok!(claim(*who, TASK));
        }
        let winner = members
            .iter()
            .map(|(who, weight)| (*who, ticket(*who, *weight, TASK)))
            .min_by(|(_, a), (_, b)| a.cmp_score(b))
            .map(|(who, _)| who)
            .unwrap();
        let (.., closes_at) = draw(TASK);
        run_to_block(closes_at);
        assert!(
            matches!(task(TASK).status, TaskStatus::Claiming { .. }),
            "claims are taken through the last block of the window"
        );
        run_to_block(closes_at + 1);
        assert_eq!(
            FakeRounds::opened(),
            vec![(
                winner,
                AttestationPhase::PreTask,
                TASK,
                session_keys(winner)
            )]
        );
        assert_eq!(
            last_event(),
            Event::ExecutorChosen {
                task: TASK,
                executor: winner,
                round: capsule_pallet_traits::RoundId(0)
            }
        );
        match task(TASK).status {
            TaskStatus::Assigned { claim, .. } => {
                assert_eq!(claim.executor, winner);
                assert_eq!(claim.session_keys, session_keys(winner));
            }
            other => panic!("not assigned: {other:?}"),
        }
    });
}

#[test]
fn claim_errors_are_typed_and_change_nothing() {
    build_and_execute(|| {
        FakeSnapshots::set(vec![(10, 1), (11, 1), (30, 1)]);
        assert_ok!(create());
        assert_noop!(
            TaskMarket::claim(
                RuntimeOrigin::signed(10),
                TASK,
                prove(10, TASK, [0; 32]),
                session_keys(10)
            ),
            Error::<Test>::NotClaiming
        );
        assert_noop!(
            TaskMarket::claim(
                RuntimeOrigin::signed(10),
                TaskId(9),
                VrfProofBytes {
                    pre_output: [0; 32],
                    proof: [0; 64]
                },
                session_keys(10)
            ),
            Error::<Test>::UnknownTask
        );
        run_to_block(1 + SEED_BLOCKS);
        let (seed, ..) = draw(TASK);
        let claim_with = |who: u64, proof: VrfProofBytes| {
            TaskMarket::claim(RuntimeOrigin::signed(who), TASK, proof, session_keys(who))
        };
        // Not in the snapshot; in it without a VRF key.
        assert_noop!(claim(12, TASK), Error::<Test>::NotEligible);
        assert_noop!(
            claim_with(30, prove(10, TASK, seed)),
            Error::<Test>::NoVrfKey
        );
        // Malformed bytes, and valid proofs for something else.
        let garbage = VrfProofBytes {
            pre_output: [0xff; 32],
            proof: [0xff; 64],
        };
        assert_noop!(claim_with(10, garbage), Error::<Test>::InvalidVrfProof);
        let mut flipped = prove(10, TASK, seed);
        flipped.proof[3] ^= 1;
        assert_noop!(claim_with(10, flipped), Error::<Test>::InvalidVrfProof);
        assert_noop!(
            claim_with(10, prove(10, TaskId(1), seed)),
            Error::<Test>::InvalidVrfProof
        );
        assert_noop!(
            claim_with(10, prove(10, TASK, [0; 32])),
            Error::<Test>::InvalidVrfProof
        );
        // Made for account 11 by 11's key: not 10's proof.
        assert_noop!(
            claim_with(10, prove(11, TASK, seed)),
            Error::<Test>::InvalidVrfProof
        );
        // 10's key over 11's transcript: the transcript binds the claimant.
        assert_noop!(
            claim_with(10, prove_as(10, 11, TASK, seed).0),
            Error::<Test>::InvalidVrfProof
        );
        // A valid claim, then its replay.
        assert_ok!(claim(10, TASK));
        assert_noop!(claim(10, TASK), Error::<Test>::DuplicateClaim);
        // After the window.
        let (.., closes_at) = draw(TASK);
        System::set_block_number(closes_at + 1);
        assert_noop!(claim(11, TASK), Error::<Test>::ClaimWindowClosed);
    });
}

#[test]
fn a_claim_above_the_threshold_is_refused() {
    build_and_execute(|| {
        // One expected claimant among 10,000 weight units: a weight-1 gateway claims with
        // probability about 1/10,000. Find one whose ticket is above, and one that the threshold
        // takes at a huge weight.
        TargetClaimants::set(1);
        FakeSnapshots::set(vec![(10, 1), (11, 9_999)]);
        created_and_seeded();
        let (_, threshold, _) = draw(TASK);
        assert!(!ticket(10, 1, TASK).is_under(threshold));
        assert_noop!(claim(10, TASK), Error::<Test>::AboveThreshold);
    });
}

#[test]
fn claims_past_the_cap_are_taken_only_if_they_lead() {
    build_and_execute(|| {
        let members: Vec<(u64, u128)> = (10..=15).map(|who| (who, 1)).collect();
        FakeSnapshots::set(members.clone());
        created_and_seeded();
        // Worst first: s[0] scores highest, s[5] lowest.
        let mut s: Vec<u64> = members.iter().map(|(who, _)| *who).collect();
        s.sort_by(|a, b| ticket(*b, 1, TASK).cmp_score(&ticket(*a, 1, TASK)));
        // The second best, then the two worst: the cap (3) is reached.
        for who in [s[4], s[0], s[1]] {
            assert_ok!(claim(who, TASK));
        }
        // Worse than the best so far: refused.
        assert_noop!(claim(s[2], TASK), Error::<Test>::TooManyClaims);
        // Better than every claim so far: taken.
        assert_ok!(claim(s[5], TASK));
        assert_eq!(
            last_event(),
            Event::Claimed {
                task: TASK,
                claimant: s[5],
                leading: true
            }
        );
    });
}

#[test]
fn no_claim_draws_again_with_a_doubled_threshold_then_refunds() {
    build_and_execute(|| {
        FakeSnapshots::set(vec![(10, 1)]);
        created_and_seeded();
        let (_, first, closes_at) = draw(TASK);
        run_to_block(closes_at + 1);
        let seeded_at = closes_at + 1 + SEED_BLOCKS;
        assert_eq!(
            last_event(),
            Event::Redrawn {
                task: TASK,
                attempt: 1,
                seeded_at
            }
        );
        run_to_block(seeded_at);
        let (_, second, closes_at) = draw(TASK);
        assert_eq!(second.target, 2 * first.target);
        assert_eq!(task(TASK).attempt, 1);
        // The last draw finds nobody either: everything held comes back.
        let free_before = Balances::balance(&CREATOR);
        run_to_block(closes_at + 1);
        assert_eq!(
            last_event(),
            Event::TaskRefunded {
                task: TASK,
                refunded: REWARD + FEE_RESERVE
            }
        );
        assert!(Tasks::<Test>::get(TASK).is_none());
        assert_eq!(escrow(CREATOR), 0);
        assert_eq!(
            Balances::balance(&CREATOR),
            free_before + REWARD + FEE_RESERVE
        );
    });
}

#[test]
fn a_winner_whose_round_cannot_open_is_redrawn() {
    build_and_execute(|| {
        FakeSnapshots::set(vec![(10, 1)]);
        created_and_seeded();
        assert_ok!(claim(10, TASK));
        FakeRounds::fill(true);
        let (.., closes_at) = draw(TASK);
        run_to_block(closes_at + 1);
        assert!(matches!(
            last_event(),
            Event::Redrawn {
                task: TASK,
                attempt: 1,
                ..
            }
        ));
    });
}

#[test]
fn the_creator_cancels_before_any_claim_for_a_fee() {
    build_and_execute(|| {
        FakeSnapshots::set(vec![(10, 1)]);
        assert_ok!(create());
        assert_noop!(
            TaskMarket::cancel(RuntimeOrigin::signed(2), TASK),
            Error::<Test>::NotCreator
        );
        let free = Balances::balance(&CREATOR);
        assert_ok!(TaskMarket::cancel(RuntimeOrigin::signed(CREATOR), TASK));
        assert_eq!(
            last_event(),
            Event::TaskCancelled {
                task: TASK,
                fee: CANCEL_FEE
            }
        );
        assert_eq!(
            Balances::balance(&CREATOR),
            free + REWARD + FEE_RESERVE - CANCEL_FEE
        );
        assert_eq!(Balances::balance(&TREASURY), 1 + CANCEL_FEE);
        assert!(SeedQueue::<Test>::get(1 + SEED_BLOCKS).is_empty());
        assert_noop!(
            TaskMarket::cancel(RuntimeOrigin::signed(CREATOR), TASK),
            Error::<Test>::UnknownTask
        );

        // Seeded but unclaimed: still cancellable; once claimed: not.
        assert_ok!(create());
        let second = TaskId(1);
        run_to_block(System::block_number() + SEED_BLOCKS);
        assert_ok!(TaskMarket::cancel(RuntimeOrigin::signed(CREATOR), second));
        assert_ok!(create());
        let third = TaskId(2);
        run_to_block(System::block_number() + SEED_BLOCKS);
        assert_ok!(claim(10, third));
        assert_noop!(
            TaskMarket::cancel(RuntimeOrigin::signed(CREATOR), third),
            Error::<Test>::AlreadyClaimed
        );
    });
}

/// 200 real proofs: what a daemon signs (sp-core's pair, as schnorrkel would) verifies in the
/// runtime's path and yields the same output; a proof never verifies for another task.
#[test]
fn real_vrf_proofs_round_trip() {
    for i in 0..200u64 {
        let who = 1 + i % 20;
        let task = TaskId(i);
        let seed = capsule_primitives::hashing::blake2_256(&i.to_le_bytes());
        let (proof, output) = prove_as(who, who, task, seed);
        let key = vrf_pair(who).public().0;
        let input = VrfTranscriptInput::task_assignment(seed, task, account_bytes(&who));
        assert_eq!(verified_output(&key, &input, &proof), Some(output));
        let other = VrfTranscriptInput::task_assignment(seed, TaskId(i + 1), account_bytes(&who));
        assert_eq!(verified_output(&key, &other, &proof), None);
    }
}

#[test]
fn the_escrow_reserve_covers_every_round_of_every_draw() {
    assert_eq!(TaskMarket::fee_reserve(), FEE_RESERVE);
}

mod results_and_settlement {
    use super::*;
    use crate::{DeadlineQueue, ExecutorOf};
    use capsule_pallet_traits::{
        OnRoundClosed, RoundId, RoundOutcome, WithdrawalBlock, WithdrawalGuard,
    };
    use capsule_primitives::task::{ResultManifest, TaskOutcome};

    const EXECUTOR: u64 = 10;
    const PRE_ROUND: RoundId = RoundId(0);
    const POST_ROUND: RoundId = RoundId(1);

    /// Creates the task and makes `EXECUTOR` (the only gateway) its winner, with its pre-task
    /// round open.
    fn assigned() {
        FakeSnapshots::set(vec![(EXECUTOR, 1)]);
        created_and_seeded();
        assert_ok!(claim(EXECUTOR, TASK));
        let (.., closes_at) = draw(TASK);
        run_to_block(closes_at + 1);
        assert!(matches!(task(TASK).status, TaskStatus::Assigned { .. }));
    }

    fn close(round: RoundId, phase: AttestationPhase, outcome: RoundOutcome, revealers: &[u64]) {
        TaskMarket::on_round_closed(round, &EXECUTOR, phase, Some(TASK), outcome, revealers);
    }

    /// Assigned, then the pre-task round passes with two revealers.
    fn running() -> u64 {
        assigned();
        close(
            PRE_ROUND,
            AttestationPhase::PreTask,
            RoundOutcome::Passed,
            &[20, 21],
        );
        match task(TASK).status {
            TaskStatus::Running { until, .. } => until,
            other => panic!("not running: {other:?}"),
        }
    }

    fn manifest(outcome: TaskOutcome) -> ResultManifest {
        ResultManifest {
            task: TASK,
            outcome,
            results: BoundedVec::truncate_from(vec![CapsuleCid {
                codec: CidCodec::Raw,
                digest: [4; 32],
            }]),
            evidence: [5; 32],
        }
    }

    fn submit(who: u64, manifest: &ResultManifest, signer: u64) -> sp_runtime::DispatchResult {
        let signature = session_pair(signer).sign(&manifest.signing_message()).0;
        TaskMarket::submit_result(RuntimeOrigin::signed(who), manifest.clone(), signature)
    }

    #[test]
    fn a_task_runs_from_claim_to_payment() {
        build_and_execute(|| {
            let free = |who| Balances::balance(&who);
            let until = running();
            let now = System::block_number();
            assert_eq!(until, now + spec().timeout);
            assert_eq!(DeadlineQueue::<Test>::get(until + 1).to_vec(), vec![TASK]);
            assert_eq!(ExecutorOf::<Test>::get(EXECUTOR), Some(TASK));
            assert_eq!(
                last_event(),
                Event::ExecutionStarted {
                    task: TASK,
                    executor: EXECUTOR,
                    until
                }
            );
            // The pre-task round's revealers were paid from the reserve.
            assert_eq!(free(20), ENDOWMENT + VERIFIER_FEE);
            assert_eq!(escrow(CREATOR), REWARD + FEE_RESERVE - 2 * VERIFIER_FEE);

            let result = manifest(TaskOutcome::Completed);
            assert_ok!(submit(EXECUTOR, &result, EXECUTOR));
            assert_eq!(
                FakeRounds::opened().last(),
                Some(&(
                    EXECUTOR,
                    AttestationPhase::PostTask,
                    TASK,
                    session_keys(EXECUTOR)
                ))
            );
            assert_eq!(
                last_event(),
                Event::ResultSubmitted {
                    task: TASK,
                    executor: EXECUTOR,
                    outcome: TaskOutcome::Completed,
                    results: result.results.clone(),
                    evidence: result.evidence,
                    round: POST_ROUND
                }
            );
            assert!(DeadlineQueue::<Test>::get(until + 1).is_empty());

            let (creator_before, executor_before) = (free(CREATOR), free(EXECUTOR));
            close(
                POST_ROUND,
                AttestationPhase::PostTask,
                RoundOutcome::Passed,
                &[20, 21, 22],
            );
            let fees = 5 * VERIFIER_FEE;
            assert_eq!(
                last_event(),
                Event::TaskSettled {
                    task: TASK,
                    executor: EXECUTOR,
                    outcome: TaskOutcome::Completed,
                    reward: REWARD,
                    fees_paid: fees
                }
            );
            assert_eq!(free(EXECUTOR), executor_before + REWARD);
            assert_eq!(free(CREATOR), creator_before + FEE_RESERVE - fees);
            assert_eq!(escrow(CREATOR), 0);
            assert_eq!(free(22), VERIFIER_FEE, "a new account, paid its fee");
            assert!(Tasks::<Test>::get(TASK).is_none());
            assert!(ExecutorOf::<Test>::get(EXECUTOR).is_none());
            assert_eq!(FakeReputation::completed(), vec![EXECUTOR]);
        });
    }

    #[test]
    fn the_creators_misbehaving_code_still_pays_the_executor() {
        for outcome in [
            TaskOutcome::TimedOut,
            TaskOutcome::OomKilled,
            TaskOutcome::PolicyViolation,
        ] {
            build_and_execute(|| {
                running();
                assert_ok!(submit(EXECUTOR, &manifest(outcome), EXECUTOR));
                let before = Balances::balance(&EXECUTOR);
                close(
                    POST_ROUND,
                    AttestationPhase::PostTask,
                    RoundOutcome::Passed,
                    &[],
                );
                assert_eq!(Balances::balance(&EXECUTOR), before + REWARD, "{outcome:?}");
            });
        }
    }

    #[test]
    fn result_errors_are_typed_and_change_nothing() {
        build_and_execute(|| {
            assigned();
            let result = manifest(TaskOutcome::Completed);
            // Before the pre-task round passed.
            assert_noop!(
                submit(EXECUTOR, &result, EXECUTOR),
                Error::<Test>::NotRunning
            );
            close(
                PRE_ROUND,
                AttestationPhase::PreTask,
                RoundOutcome::Passed,
                &[],
            );
            let unknown = ResultManifest {
                task: TaskId(9),
                ..result.clone()
            };
            assert_noop!(
                submit(EXECUTOR, &unknown, EXECUTOR),
                Error::<Test>::UnknownTask
            );
            assert_noop!(submit(11, &result, EXECUTOR), Error::<Test>::NotExecutor);
            // Signed by another key, or a signature over another manifest.
            assert_noop!(
                submit(EXECUTOR, &result, 11),
                Error::<Test>::BadManifestSignature
            );
            let signature = session_pair(EXECUTOR)
                .sign(&manifest(TaskOutcome::TimedOut).signing_message())
                .0;
            assert_noop!(
                TaskMarket::submit_result(
                    RuntimeOrigin::signed(EXECUTOR),
                    result.clone(),
                    signature
                ),
                Error::<Test>::BadManifestSignature
            );
            FakeRounds::fill(true);
            assert_noop!(
                submit(EXECUTOR, &result, EXECUTOR),
                Error::<Test>::RoundUnavailable
            );
            FakeRounds::fill(false);
            let TaskStatus::Running { until, .. } = task(TASK).status else {
                panic!("running")
            };
            System::set_block_number(until + 1);
            assert_noop!(
                submit(EXECUTOR, &result, EXECUTOR),
                Error::<Test>::DeadlinePassed
            );
            System::set_block_number(until);
            assert_ok!(submit(EXECUTOR, &result, EXECUTOR));
            assert_noop!(
                submit(EXECUTOR, &result, EXECUTOR),
                Error::<Test>::NotRunning
            );
        });
    }

    #[test]
    fn a_failed_cleanup_round_refunds_the_creator_net_of_fees() {
        build_and_execute(|| {
            running();
            assert_ok!(submit(
                EXECUTOR,
                &manifest(TaskOutcome::Completed),
                EXECUTOR
            ));
            let (creator, executor) = (Balances::balance(&CREATOR), Balances::balance(&EXECUTOR));
            close(
                POST_ROUND,
                AttestationPhase::PostTask,
                RoundOutcome::Failed,
                &[20, 21, 22],
            );
            let fees = 5 * VERIFIER_FEE;
            assert_eq!(
                last_event(),
                Event::TaskFailed {
                    task: TASK,
                    refunded: REWARD + FEE_RESERVE - fees,
                    fees_paid: fees
                }
            );
            assert_eq!(
                Balances::balance(&CREATOR),
                creator + REWARD + FEE_RESERVE - fees
            );
            assert_eq!(Balances::balance(&EXECUTOR), executor, "no reward");
            assert!(ExecutorOf::<Test>::get(EXECUTOR).is_none());
            assert!(FakeReputation::completed().is_empty());
        });
    }

    #[test]
    fn a_failed_pre_task_round_draws_again() {
        build_and_execute(|| {
            assigned();
            close(
                PRE_ROUND,
                AttestationPhase::PreTask,
                RoundOutcome::Failed,
                &[20],
            );
            assert!(matches!(
                last_event(),
                Event::Redrawn {
                    task: TASK,
                    attempt: 1,
                    ..
                }
            ));
            assert!(ExecutorOf::<Test>::get(EXECUTOR).is_none());
            assert_eq!(escrow(CREATOR), REWARD + FEE_RESERVE - VERIFIER_FEE);
        });
    }

    #[test]
    fn a_missed_deadline_draws_again() {
        build_and_execute(|| {
            let until = running();
            run_to_block(until);
            assert!(matches!(task(TASK).status, TaskStatus::Running { .. }));
            run_to_block(until + 1);
            let events: Vec<_> = System::events()
                .into_iter()
                .filter_map(|r| match r.event {
                    RuntimeEvent::TaskMarket(e) => Some(e),
                    _ => None,
                })
                .collect();
            assert!(events.contains(&Event::DeadlineMissed {
                task: TASK,
                executor: EXECUTOR
            }));
            assert!(matches!(
                last_event(),
                Event::Redrawn {
                    task: TASK,
                    attempt: 1,
                    ..
                }
            ));
            assert!(ExecutorOf::<Test>::get(EXECUTOR).is_none());
        });
    }

    #[test]
    fn a_round_settles_once_and_stale_rounds_are_ignored() {
        build_and_execute(|| {
            running();
            assert_ok!(submit(
                EXECUTOR,
                &manifest(TaskOutcome::Completed),
                EXECUTOR
            ));
            // A late word about the pre-task round, or a round of another id: ignored.
            close(
                PRE_ROUND,
                AttestationPhase::PreTask,
                RoundOutcome::Failed,
                &[20],
            );
            close(
                RoundId(7),
                AttestationPhase::PostTask,
                RoundOutcome::Failed,
                &[20],
            );
            assert!(matches!(task(TASK).status, TaskStatus::Verifying { .. }));
            close(
                POST_ROUND,
                AttestationPhase::PostTask,
                RoundOutcome::Passed,
                &[],
            );
            let paid = Balances::balance(&EXECUTOR);
            close(
                POST_ROUND,
                AttestationPhase::PostTask,
                RoundOutcome::Passed,
                &[20],
            );
            assert_eq!(Balances::balance(&EXECUTOR), paid, "settled once");
            assert_eq!(FakeReputation::completed(), vec![EXECUTOR]);
        });
    }

    #[test]
    fn an_executor_holds_one_task_and_cannot_withdraw_until_it_settles() {
        build_and_execute(|| {
            assigned();
            assert_eq!(
                TaskMarket::withdrawal_block(&EXECUTOR),
                Some(WithdrawalBlock::UnsettledExecutor)
            );
            assert_ok!(TaskMarket::create_task(
                RuntimeOrigin::signed(2),
                Box::new(spec()),
                REWARD
            ));
            let second = TaskId(1);
            run_to_block(System::block_number() + SEED_BLOCKS);
            assert_noop!(claim(EXECUTOR, second), Error::<Test>::ExecutorBusy);
            close(
                PRE_ROUND,
                AttestationPhase::PreTask,
                RoundOutcome::Passed,
                &[],
            );
            assert_ok!(submit(
                EXECUTOR,
                &manifest(TaskOutcome::Completed),
                EXECUTOR
            ));
            close(
                POST_ROUND,
                AttestationPhase::PostTask,
                RoundOutcome::Passed,
                &[],
            );
            assert_eq!(TaskMarket::withdrawal_block(&EXECUTOR), None);
        });
    }
}
