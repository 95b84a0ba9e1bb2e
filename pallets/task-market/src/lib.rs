//! # Task-market pallet
//!
//! Users post tasks ("digital capsules" to run a pure function over); the chain picks the
//! executing gateway by a VRF lottery nobody can predict or steer, attests it before and after
//! the run, and pays it from the task's escrow. The chain keeps digests and CIDs only, never
//! task data.
//!
//! A task's life:
//! 1. [`Pallet::create_task`]: the function image digest, input capsule CIDs, policy digest,
//!    result recipients and timeout; the reward and a worst-case reserve of verifier fees are
//!    held from the creator under [`HoldReason::Escrow`]. [`Pallet::cancel`] before any claim
//!    refunds all but [`Config::CancelFee`], so create-cancel loops cannot grind the draw.
//! 2. Sortition. The task waits `L` blocks ([`RecentRandomness::seed_blocks`]); its seed is mixed
//!    from those blocks' BABE VRF outputs (`capsule_primitives::seed::task_seed`). Each gateway
//!    of the epoch snapshot computes its sr25519 VRF over (tag, seed, task, its account) in
//!    private; its score is `-ln(u) / weight` (`capsule_primitives::sortition`), so the lowest
//!    score belongs to a gateway with probability `weight / total`. Gateways under the threshold
//!    (set for [`Config::TargetClaimants`] expected claimants) [`Pallet::claim`] within
//!    [`Config::ClaimWindow`] blocks with their proof and HPC session keys; the runtime verifies
//!    the proof and keeps the lowest score.
//! 3. When the window closes (`on_initialize`, a bounded queue per block), the winner's pre-task
//!    attestation round opens, bound to the task and its session keys. No claim (or no round
//!    could open): a new seed with a doubled threshold, up to [`Config::MaxAttempts`] draws, then
//!    a refund.
//! 4. The pre-task round passes: the executor runs the task and, before its deadline
//!    ([`TaskSpec::timeout`] blocks later), [`Pallet::submit_result`]s the result manifest signed
//!    by the Ed25519 session key the round attested. That opens the post-task (cleanup) round.
//!    A failed pre-task round, or a missed deadline, draws again (or refunds).
//! 5. Settlement, when the attestation pallet tells us the round closed ([`OnRoundClosed`]):
//!    every revealing verifier is paid its flat fee from the reserve; a passed post-task round
//!    pays the executor the reward whatever the task's outcome (TimedOut, OomKilled and
//!    PolicyViolation are the creator's code misbehaving) and raises its reputation; a failed
//!    one (the attestation pallet slashes the executor) refunds the creator net of the fees.
//!    The unspent reserve returns to the creator.
//!
//! An executor holds one task at a time, and may not withdraw its bond until that task settles
//! ([`WithdrawalGuard`]).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
pub mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;
pub use weights::WeightInfo;

use capsule_pallet_traits::{
    account_bytes, AttestationPhase, EpochIndex, EpochSnapshots, OnRoundClosed, RecentRandomness,
    ReputationEvents, RoundId, RoundOutcome, TaskId, TaskRounds, VrfKeys, WithdrawalBlock,
    WithdrawalGuard,
};
use capsule_primitives::{
    capsule::CapsuleCid,
    keys::HpcSessionKeys,
    measurement::ImageDigest,
    policy::PolicyDigest,
    seed::task_seed,
    sortition::{Threshold, Ticket, ONE},
    task::{ResultManifest, TaskOutcome, MAX_RESULTS},
    vrf::{VrfProofBytes, VrfTranscriptInput, VRF_OUTPUT_CONTEXT},
    ConstU32,
};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{self, Inspect, MutateHold},
        tokens::{Fortitude, Precision, Restriction},
    },
    CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_runtime::traits::{One, Saturating, Zero};

/// The balance type of the currency tasks are paid in.
pub type BalanceOf<T> =
    <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// A valid claim: the claimant, its ticket, and the HPC session keys its pre-task round will
/// attest.
#[derive(
    Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Claim<AccountId> {
    pub executor: AccountId,
    pub ticket: Ticket,
    pub session_keys: HpcSessionKeys,
}

/// Where a task stands.
#[derive(
    CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub enum TaskStatus<T: Config> {
    /// Waiting for the VRF outputs of the blocks after its creation (or its last failed draw);
    /// seeded at block `due`.
    AwaitingSeed { due: BlockNumberFor<T> },
    /// Seeded: gateways under the threshold claim until `closes_at`; `best` is the lowest score
    /// so far, `claimants` everyone who claimed (a claim is taken once).
    Claiming {
        epoch: EpochIndex,
        seed: [u8; 32],
        threshold: Threshold,
        closes_at: BlockNumberFor<T>,
        best: Option<Claim<T::AccountId>>,
        claimants: BoundedVec<T::AccountId, T::MaxClaimants>,
    },
    /// The winner's pre-task round is open.
    Assigned {
        claim: Claim<T::AccountId>,
        round: RoundId,
    },
    /// The pre-task round passed: the executor runs the task and submits its result by
    /// block `until`.
    Running {
        claim: Claim<T::AccountId>,
        until: BlockNumberFor<T>,
    },
    /// The result is in; the post-task (cleanup) round `round` decides the payment.
    Verifying {
        claim: Claim<T::AccountId>,
        round: RoundId,
        outcome: TaskOutcome,
    },
}

/// A task as the chain keeps it: digests and CIDs, never data.
#[derive(
    CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct Task<T: Config> {
    pub creator: T::AccountId,
    /// The function's container image, pinned by the creator (a Docker image id).
    pub image: ImageDigest,
    /// The input capsules.
    pub inputs: BoundedVec<CapsuleCid, T::MaxInputs>,
    /// Digest of the `TaskPolicy` the executor enforces.
    pub policy: PolicyDigest,
    /// Who may open the result capsules.
    pub recipients: BoundedVec<T::AccountId, T::MaxRecipients>,
    /// Blocks the executor has to submit its result once its pre-task round passed.
    pub timeout: BlockNumberFor<T>,
    /// Paid to the executor on success.
    pub reward: BalanceOf<T>,
    /// Held for verifier fees (the worst case over every draw); the rest returns at the end.
    pub fee_reserve: BalanceOf<T>,
    /// Verifier fees paid so far out of the reserve.
    pub fees_paid: BalanceOf<T>,
    pub created_at: BlockNumberFor<T>,
    /// Draws so far, counting the current one from 0.
    pub attempt: u8,
    pub status: TaskStatus<T>,
}

/// What a creator asks for.
#[derive(
    CloneNoBound,
    PartialEqNoBound,
    EqNoBound,
    DebugNoBound,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
#[scale_info(skip_type_params(T))]
pub struct TaskSpec<T: Config> {
    /// The function's container image (a Docker image id), pinned by the creator.
    pub image: ImageDigest,
    /// The input capsules, by CID.
    pub inputs: BoundedVec<CapsuleCid, T::MaxInputs>,
    /// Digest of the `TaskPolicy` the executor must enforce.
    pub policy: PolicyDigest,
    /// Who may open the result capsules.
    pub recipients: BoundedVec<T::AccountId, T::MaxRecipients>,
    /// Blocks the executor has to submit its result once its pre-task round passed.
    pub timeout: BlockNumberFor<T>,
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config {
        /// The currency rewards and fees are held and paid in.
        type Currency: fungible::Mutate<Self::AccountId>
            + fungible::MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

        /// The runtime's hold reasons, of which [`HoldReason::Escrow`] is ours.
        type RuntimeHoldReason: From<HoldReason>;

        /// The epoch snapshots executors are drawn from (the reputation pallet).
        type Snapshots: EpochSnapshots<Self::AccountId>;

        /// Pre- and post-task rounds and their fees (the attestation pallet).
        type Rounds: TaskRounds<Self::AccountId, Balance = BalanceOf<Self>>;

        /// The recent BABE VRF outputs seeds are mixed from (the attestation pallet).
        type Randomness: RecentRandomness;

        /// The gateways' VRF keys (the attestation pallet).
        type VrfKeys: VrfKeys<Self::AccountId>;

        /// Told when an executor completes a task (the reputation pallet).
        type Reputation: ReputationEvents<Self::AccountId>;

        /// Where cancellation fees go.
        type Treasury: Get<Self::AccountId>;

        /// What cancelling a task before any claim costs.
        #[pallet::constant]
        type CancelFee: Get<BalanceOf<Self>>;

        /// The smallest reward a task may offer.
        #[pallet::constant]
        type MinReward: Get<BalanceOf<Self>>;

        /// Blocks gateways have to claim, from the task's seeding.
        #[pallet::constant]
        type ClaimWindow: Get<BlockNumberFor<Self>>;

        /// The expected number of claimants the first draw's threshold aims at (later draws
        /// double it).
        #[pallet::constant]
        type TargetClaimants: Get<u32>;

        /// Draws before a task without an executor is refunded.
        #[pallet::constant]
        type MaxAttempts: Get<u8>;

        /// The most claims one draw takes (beyond it, only a claim that beats the best).
        #[pallet::constant]
        type MaxClaimants: Get<u32>;

        /// The most input capsules a task names.
        #[pallet::constant]
        type MaxInputs: Get<u32>;

        /// The most result recipients a task names.
        #[pallet::constant]
        type MaxRecipients: Get<u32>;

        /// The longest run a task may ask for.
        #[pallet::constant]
        type MaxTimeout: Get<BlockNumberFor<Self>>;

        /// Tasks one block may create (bounds the seeding and claim-closing work of later blocks).
        #[pallet::constant]
        type MaxTasksPerBlock: Get<u32>;

        type WeightInfo: WeightInfo;

        /// Installs snapshots and VRF keys in the benchmarks.
        #[cfg(feature = "runtime-benchmarks")]
        type BenchmarkHelper: benchmarking::BenchmarkHelper<Self::AccountId>;
    }

    /// Why this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A task's reward and verifier-fee reserve, held from its creator.
        #[codec(index = 0)]
        Escrow,
    }

    /// The id the next task gets.
    #[pallet::storage]
    pub type NextTaskId<T: Config> = StorageValue<_, TaskId, ValueQuery>;

    /// Tasks not yet settled.
    #[pallet::storage]
    pub type Tasks<T: Config> = StorageMap<_, Twox64Concat, TaskId, Task<T>>;

    /// Tasks to seed at a block.
    #[pallet::storage]
    pub type SeedQueue<T: Config> = StorageMap<
        _,
        Twox64Concat,
        BlockNumberFor<T>,
        BoundedVec<TaskId, T::MaxTasksPerBlock>,
        ValueQuery,
    >;

    /// Tasks whose claim window closes at a block (the block after its last claim block).
    #[pallet::storage]
    pub type CloseQueue<T: Config> = StorageMap<
        _,
        Twox64Concat,
        BlockNumberFor<T>,
        BoundedVec<TaskId, T::MaxTasksPerBlock>,
        ValueQuery,
    >;

    /// Tasks whose result is due: the block after the executor's last block.
    #[pallet::storage]
    pub type DeadlineQueue<T: Config> = StorageMap<
        _,
        Twox64Concat,
        BlockNumberFor<T>,
        BoundedVec<TaskId, T::MaxTasksPerBlock>,
        ValueQuery,
    >;

    /// The task each executor holds, from its win to its task's settlement (one at a time).
    #[pallet::storage]
    pub type ExecutorOf<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, TaskId>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A task was created; it is seeded at block `seeded_at`.
        TaskCreated {
            task: TaskId,
            creator: T::AccountId,
            reward: BalanceOf<T>,
            seeded_at: BlockNumberFor<T>,
        },
        /// The creator cancelled the task; `fee` went to the treasury, the rest back.
        TaskCancelled { task: TaskId, fee: BalanceOf<T> },
        /// The task's draw `attempt` was seeded: gateways under `threshold` may claim until
        /// `closes_at`.
        TaskSeeded {
            task: TaskId,
            attempt: u8,
            seed: [u8; 32],
            threshold: Threshold,
            closes_at: BlockNumberFor<T>,
        },
        /// A gateway claimed the task; `leading` if its score is the best so far.
        Claimed {
            task: TaskId,
            claimant: T::AccountId,
            leading: bool,
        },
        /// The draw's winner; its pre-task round is `round`.
        ExecutorChosen {
            task: TaskId,
            executor: T::AccountId,
            round: RoundId,
        },
        /// The draw found no executor; the task is drawn again, seeded at `seeded_at`.
        Redrawn {
            task: TaskId,
            attempt: u8,
            seeded_at: BlockNumberFor<T>,
        },
        /// Every draw failed: the escrow went back to the creator.
        TaskRefunded {
            task: TaskId,
            refunded: BalanceOf<T>,
        },
        /// The executor's pre-task round passed: it runs the task until block `until`.
        ExecutionStarted {
            task: TaskId,
            executor: T::AccountId,
            until: BlockNumberFor<T>,
        },
        /// The executor submitted its result; the post-task round `round` checks the cleanup.
        /// Recipients fetch `results` by CID.
        ResultSubmitted {
            task: TaskId,
            executor: T::AccountId,
            outcome: TaskOutcome,
            results: BoundedVec<CapsuleCid, ConstU32<MAX_RESULTS>>,
            evidence: [u8; 32],
            round: RoundId,
        },
        /// The executor missed its deadline; the task is drawn again or refunded.
        DeadlineMissed {
            task: TaskId,
            executor: T::AccountId,
        },
        /// The post-task round passed: the executor was paid.
        TaskSettled {
            task: TaskId,
            executor: T::AccountId,
            outcome: TaskOutcome,
            reward: BalanceOf<T>,
            fees_paid: BalanceOf<T>,
        },
        /// The executor's pre- or post-task round did not pass (the attestation pallet slashed
        /// it if the committee was large enough).
        ExecutorFailed {
            task: TaskId,
            executor: T::AccountId,
            phase: AttestationPhase,
            outcome: RoundOutcome,
        },
        /// The post-task round did not pass: the creator got back what was held, net of the
        /// verifier fees paid.
        TaskFailed {
            task: TaskId,
            refunded: BalanceOf<T>,
            fees_paid: BalanceOf<T>,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// No such task (it never existed, or it was settled).
        UnknownTask,
        /// The reward is below `MinReward`.
        RewardTooLow,
        /// The timeout is zero or above `MaxTimeout`.
        InvalidTimeout,
        /// A task needs at least one result recipient.
        NoRecipients,
        /// The creator cannot hold the reward and the fee reserve.
        InsufficientBalance,
        /// The block's cap on new tasks is reached: try the next block.
        TooManyTasks,
        /// Task ids are exhausted.
        TaskIdsExhausted,
        /// Only the task's creator may do this.
        NotCreator,
        /// Someone has claimed the task already: it can no longer be cancelled.
        AlreadyClaimed,
        /// The task is not taking claims.
        NotClaiming,
        /// The claim window has closed.
        ClaimWindowClosed,
        /// The claimant is not in the task's epoch snapshot.
        NotEligible,
        /// The claimant has no VRF key for the task's epoch.
        NoVrfKey,
        /// The VRF proof is malformed or does not verify for this task, seed and account.
        InvalidVrfProof,
        /// The proof is valid but its score is not under the task's threshold.
        AboveThreshold,
        /// This account has claimed this draw already.
        DuplicateClaim,
        /// The draw has taken `MaxClaimants` claims and this one does not beat the best.
        TooManyClaims,
        /// The claimant already executes another task.
        ExecutorBusy,
        /// The task is not running: its executor's pre-task round has not passed, or its
        /// result is in already.
        NotRunning,
        /// Only the task's executor may submit its result.
        NotExecutor,
        /// The result's deadline has passed.
        DeadlinePassed,
        /// The manifest's signature does not verify under the attested Ed25519 session key.
        BadManifestSignature,
        /// The post-task round could not open this block (the block's rounds are full): retry
        /// in the next block.
        RoundUnavailable,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(now: BlockNumberFor<T>) -> Weight {
            let due = SeedQueue::<T>::take(now);
            let seeded = due.len() as u32;
            for task in due {
                Self::seed(task, now);
            }
            let closing = CloseQueue::<T>::take(now);
            let closed = closing.len() as u32;
            for task in closing {
                Self::close_claims(task, now);
            }
            let expiring = DeadlineQueue::<T>::take(now);
            let expired = expiring.len() as u32;
            for task in expiring {
                Self::expire(task, now);
            }
            T::WeightInfo::on_initialize_seeding(seeded)
                .saturating_add(T::WeightInfo::on_initialize_closing(closed))
                .saturating_add(T::Rounds::open_weight().saturating_mul(closed.into()))
                .saturating_add(T::WeightInfo::on_initialize_deadlines(expired))
        }

        fn integrity_test() {
            assert!(T::MaxAttempts::get() > 0, "MaxAttempts must be positive");
            assert!(
                T::MaxTasksPerBlock::get() > 0,
                "MaxTasksPerBlock must be positive"
            );
            assert!(
                T::TargetClaimants::get() > 0,
                "TargetClaimants must be positive"
            );
            assert!(
                !T::ClaimWindow::get().is_zero(),
                "ClaimWindow must be positive"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call(weight(<T as Config>::WeightInfo))]
    impl<T: Config> Pallet<T> {
        /// Posts a task. Holds `reward` plus the worst-case verifier fees from the caller; the
        /// task is seeded `L` blocks later.
        #[pallet::call_index(0)]
        pub fn create_task(
            origin: OriginFor<T>,
            spec: alloc::boxed::Box<TaskSpec<T>>,
            reward: BalanceOf<T>,
        ) -> DispatchResult {
            let creator = ensure_signed(origin)?;
            ensure!(reward >= T::MinReward::get(), Error::<T>::RewardTooLow);
            ensure!(
                !spec.timeout.is_zero() && spec.timeout <= T::MaxTimeout::get(),
                Error::<T>::InvalidTimeout
            );
            ensure!(!spec.recipients.is_empty(), Error::<T>::NoRecipients);
            let now = frame_system::Pallet::<T>::block_number();
            let due = now.saturating_add(T::Randomness::seed_blocks().into());
            let mut queue = SeedQueue::<T>::get(due);
            let id = NextTaskId::<T>::get();
            queue.try_push(id).map_err(|_| Error::<T>::TooManyTasks)?;
            let next = id.next().ok_or(Error::<T>::TaskIdsExhausted)?;
            let fee_reserve = Self::fee_reserve();
            T::Currency::hold(
                &HoldReason::Escrow.into(),
                &creator,
                reward.saturating_add(fee_reserve),
            )
            .map_err(|_| Error::<T>::InsufficientBalance)?;
            let TaskSpec {
                image,
                inputs,
                policy,
                recipients,
                timeout,
            } = *spec;
            let task = Task::<T> {
                creator: creator.clone(),
                image,
                inputs,
                policy,
                recipients,
                timeout,
                reward,
                fee_reserve,
                fees_paid: Zero::zero(),
                created_at: now,
                attempt: 0,
                status: TaskStatus::AwaitingSeed { due },
            };
            SeedQueue::<T>::insert(due, queue);
            NextTaskId::<T>::put(next);
            Tasks::<T>::insert(id, task);
            Self::deposit_event(Event::TaskCreated {
                task: id,
                creator,
                reward,
                seeded_at: due,
            });
            Ok(())
        }

        /// The creator withdraws a task nobody has claimed: the escrow returns minus
        /// `CancelFee`, which goes to the treasury.
        #[pallet::call_index(1)]
        pub fn cancel(origin: OriginFor<T>, task: TaskId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let state = Tasks::<T>::get(task).ok_or(Error::<T>::UnknownTask)?;
            ensure!(state.creator == who, Error::<T>::NotCreator);
            match &state.status {
                TaskStatus::AwaitingSeed { due } => {
                    SeedQueue::<T>::mutate(due, |queue| queue.retain(|id| *id != task));
                }
                TaskStatus::Claiming {
                    closes_at,
                    claimants,
                    ..
                } if claimants.is_empty() => {
                    let close = closes_at.saturating_add(One::one());
                    CloseQueue::<T>::mutate(close, |queue| queue.retain(|id| *id != task));
                }
                _ => return Err(Error::<T>::AlreadyClaimed.into()),
            }
            let held = Self::held(&state);
            let fee = T::CancelFee::get().min(held);
            // The hold was taken at creation and only this pallet releases it.
            let _ = T::Currency::transfer_on_hold(
                &HoldReason::Escrow.into(),
                &who,
                &T::Treasury::get(),
                fee,
                Precision::BestEffort,
                Restriction::Free,
                Fortitude::Polite,
            );
            let _ = T::Currency::release(
                &HoldReason::Escrow.into(),
                &who,
                held.saturating_sub(fee),
                Precision::BestEffort,
            );
            Tasks::<T>::remove(task);
            Self::deposit_event(Event::TaskCancelled { task, fee });
            Ok(())
        }

        /// Claims the task for the caller's gateway with its VRF proof over the task's
        /// transcript, and the HPC session keys its pre-task round will attest. Accepted if the
        /// proof verifies under the caller's VRF key and its score is under the threshold; the
        /// lowest score wins when the window closes.
        #[pallet::call_index(2)]
        pub fn claim(
            origin: OriginFor<T>,
            task: TaskId,
            proof: VrfProofBytes,
            session_keys: HpcSessionKeys,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut state = Tasks::<T>::get(task).ok_or(Error::<T>::UnknownTask)?;
            let TaskStatus::Claiming {
                epoch,
                seed,
                threshold,
                closes_at,
                best,
                claimants,
            } = &mut state.status
            else {
                return Err(Error::<T>::NotClaiming.into());
            };
            let now = frame_system::Pallet::<T>::block_number();
            ensure!(now <= *closes_at, Error::<T>::ClaimWindowClosed);
            ensure!(!claimants.contains(&who), Error::<T>::DuplicateClaim);
            ensure!(
                !ExecutorOf::<T>::contains_key(&who),
                Error::<T>::ExecutorBusy
            );
            let weight = T::Snapshots::snapshot(*epoch)
                .and_then(|snapshot| {
                    snapshot
                        .members
                        .iter()
                        .find(|entry| entry.account == who)
                        .map(|entry| entry.weight)
                })
                .filter(|weight| *weight > 0)
                .ok_or(Error::<T>::NotEligible)?;
            let key = T::VrfKeys::vrf_key(&who, *epoch).ok_or(Error::<T>::NoVrfKey)?;
            let input = VrfTranscriptInput::task_assignment(*seed, task, account_bytes(&who));
            let output =
                verified_output(&key, &input, &proof).ok_or(Error::<T>::InvalidVrfProof)?;
            let ticket = Ticket::new(output, weight);
            ensure!(ticket.is_under(*threshold), Error::<T>::AboveThreshold);
            let leading = best
                .as_ref()
                .is_none_or(|best| ticket.cmp_score(&best.ticket).is_lt());
            if claimants.try_push(who.clone()).is_err() && !leading {
                return Err(Error::<T>::TooManyClaims.into());
            }
            if leading {
                *best = Some(Claim {
                    executor: who.clone(),
                    ticket,
                    session_keys,
                });
            }
            Tasks::<T>::insert(task, state);
            Self::deposit_event(Event::Claimed {
                task,
                claimant: who,
                leading,
            });
            Ok(())
        }

        /// The executor submits its result: the manifest (outcome, result capsule CIDs,
        /// evidence digest) signed by the Ed25519 session key its pre-task round attested,
        /// before its deadline. Opens the post-task round, which decides the payment.
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::submit_result().saturating_add(T::Rounds::open_weight()))]
        pub fn submit_result(
            origin: OriginFor<T>,
            manifest: ResultManifest,
            signature: [u8; 64],
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let id = manifest.task;
            let mut task = Tasks::<T>::get(id).ok_or(Error::<T>::UnknownTask)?;
            let TaskStatus::Running { claim, until } = &task.status else {
                return Err(Error::<T>::NotRunning.into());
            };
            ensure!(claim.executor == who, Error::<T>::NotExecutor);
            let now = frame_system::Pallet::<T>::block_number();
            ensure!(now <= *until, Error::<T>::DeadlinePassed);
            ensure!(
                sp_io::crypto::ed25519_verify(
                    &sp_core::ed25519::Signature::from_raw(signature),
                    &manifest.signing_message(),
                    &sp_core::ed25519::Public::from_raw(claim.session_keys.ed25519),
                ),
                Error::<T>::BadManifestSignature
            );
            let round = T::Rounds::open_task_round(
                &who,
                AttestationPhase::PostTask,
                id,
                claim.session_keys,
            )
            .map_err(|_| Error::<T>::RoundUnavailable)?;
            let deadline = until.saturating_add(One::one());
            DeadlineQueue::<T>::mutate(deadline, |queue| queue.retain(|queued| *queued != id));
            task.status = TaskStatus::Verifying {
                claim: claim.clone(),
                round,
                outcome: manifest.outcome,
            };
            Tasks::<T>::insert(id, task);
            Self::deposit_event(Event::ResultSubmitted {
                task: id,
                executor: who,
                outcome: manifest.outcome,
                results: manifest.results,
                evidence: manifest.evidence,
                round,
            });
            Ok(())
        }
    }
}

/// The 16-byte VRF output of `proof` for `input` under the sr25519 key `key`, if the proof is
/// well formed and verifies.
pub fn verified_output(
    key: &[u8; 32],
    input: &VrfTranscriptInput,
    proof: &VrfProofBytes,
) -> Option<[u8; 16]> {
    use sp_core::crypto::VrfPublic;
    use sp_core::sr25519::{
        vrf::{VrfSignData, VrfSignature, VrfTranscript},
        Public,
    };
    let signature = VrfSignature::decode(&mut &proof.encode()[..]).ok()?;
    let public = Public::from_raw(*key);
    let transcript = VrfTranscript(input.transcript());
    if !public.vrf_verify(&VrfSignData::new(transcript.clone()), &signature) {
        return None;
    }
    public
        .make_bytes::<16>(VRF_OUTPUT_CONTEXT, &transcript, &signature.pre_output)
        .ok()
}

impl<T: Config> Pallet<T> {
    /// What a task holds for verifier fees: every member of a pre- and a post-task round
    /// (re-opened attempts included), for every draw.
    pub fn fee_reserve() -> BalanceOf<T> {
        let members = T::Rounds::max_paid_members()
            .saturating_mul(2)
            .saturating_mul(T::MaxAttempts::get().into());
        T::Rounds::verifier_fee().saturating_mul(members.into())
    }

    /// The threshold of draw `attempt` over a snapshot of `total_weight`: the target number of
    /// claimants, doubled for every earlier draw.
    pub fn threshold(attempt: u8, total_weight: u128) -> Threshold {
        let target = u64::from(T::TargetClaimants::get())
            .saturating_mul(ONE)
            .saturating_mul(1u64 << attempt.min(16));
        Threshold {
            target,
            total_weight,
        }
    }

    /// Seeds a task from the VRF outputs of the blocks since it was queued, and opens its claim
    /// window.
    fn seed(id: TaskId, now: BlockNumberFor<T>) {
        let Some(mut task) = Tasks::<T>::get(id) else {
            return;
        };
        let epoch = T::Snapshots::current_epoch();
        let total_weight = T::Snapshots::snapshot(epoch)
            .map(|snapshot| snapshot.total_weight)
            .unwrap_or(0);
        let seed = task_seed(id, &T::Randomness::recent_outputs());
        let threshold = Self::threshold(task.attempt, total_weight);
        let closes_at = now.saturating_add(T::ClaimWindow::get());
        // The queue closing at `closes_at + 1` holds what was seeded at `now`, whose queue was
        // capped the same: it has room, except for redraws queued beside new tasks (then the
        // draw closes a block later, at most `MaxTasksPerBlock` blocks later).
        let Some(close) =
            Self::queue_within::<CloseQueue<T>>(id, closes_at.saturating_add(One::one()))
        else {
            Self::redraw_or_refund(id, task, now);
            return;
        };
        let closes_at = close.saturating_sub(One::one());
        task.status = TaskStatus::Claiming {
            epoch,
            seed,
            threshold,
            closes_at,
            best: None,
            claimants: BoundedVec::new(),
        };
        Self::deposit_event(Event::TaskSeeded {
            task: id,
            attempt: task.attempt,
            seed,
            threshold,
            closes_at,
        });
        Tasks::<T>::insert(id, task);
    }

    /// Closes a task's claim window: the best claim's pre-task round opens, or the task is
    /// drawn again (or refunded after the last draw).
    fn close_claims(id: TaskId, now: BlockNumberFor<T>) {
        let Some(mut task) = Tasks::<T>::get(id) else {
            return;
        };
        let TaskStatus::Claiming { best, .. } = &task.status else {
            return;
        };
        let Some(claim) = best.clone() else {
            Self::redraw_or_refund(id, task, now);
            return;
        };
        // The winner may have won another draw that closed first.
        if ExecutorOf::<T>::contains_key(&claim.executor) {
            Self::redraw_or_refund(id, task, now);
            return;
        }
        match T::Rounds::open_task_round(
            &claim.executor,
            AttestationPhase::PreTask,
            id,
            claim.session_keys,
        ) {
            Ok(round) => {
                Self::deposit_event(Event::ExecutorChosen {
                    task: id,
                    executor: claim.executor.clone(),
                    round,
                });
                ExecutorOf::<T>::insert(&claim.executor, id);
                task.status = TaskStatus::Assigned { claim, round };
                Tasks::<T>::insert(id, task);
            }
            // The winner is already under attestation, or the block's rounds are full.
            Err(_) => Self::redraw_or_refund(id, task, now),
        }
    }

    /// Queues another draw, or refunds the escrow once `MaxAttempts` draws have failed.
    fn redraw_or_refund(id: TaskId, mut task: Task<T>, now: BlockNumberFor<T>) {
        let attempt = task.attempt.saturating_add(1);
        if attempt < T::MaxAttempts::get() {
            let wanted = now.saturating_add(T::Randomness::seed_blocks().into());
            if let Some(due) = Self::queue_within::<SeedQueue<T>>(id, wanted) {
                task.attempt = attempt;
                task.status = TaskStatus::AwaitingSeed { due };
                Tasks::<T>::insert(id, task);
                Self::deposit_event(Event::Redrawn {
                    task: id,
                    attempt,
                    seeded_at: due,
                });
                return;
            }
        }
        let refunded = Self::release_all(&task);
        Tasks::<T>::remove(id);
        Self::deposit_event(Event::TaskRefunded { task: id, refunded });
    }

    /// What a task still holds: its reward and the unpaid part of its fee reserve.
    fn held(task: &Task<T>) -> BalanceOf<T> {
        task.reward
            .saturating_add(task.fee_reserve.saturating_sub(task.fees_paid))
    }

    /// Releases everything a task still holds back to its creator.
    fn release_all(task: &Task<T>) -> BalanceOf<T> {
        T::Currency::release(
            &HoldReason::Escrow.into(),
            &task.creator,
            Self::held(task),
            Precision::BestEffort,
        )
        .unwrap_or_default()
    }

    /// Pays each revealer of a round about `task` its fee from the reserve.
    fn pay_fees(task: &mut Task<T>, revealers: &[T::AccountId]) {
        let fee = T::Rounds::verifier_fee();
        for revealer in revealers {
            let left = task.fee_reserve.saturating_sub(task.fees_paid);
            if left < fee {
                break;
            }
            if T::Currency::transfer_on_hold(
                &HoldReason::Escrow.into(),
                &task.creator,
                revealer,
                fee,
                Precision::Exact,
                Restriction::Free,
                Fortitude::Polite,
            )
            .is_ok()
            {
                task.fees_paid = task.fees_paid.saturating_add(fee);
            }
        }
    }

    /// A running task whose executor missed its deadline: drawn again, or refunded.
    fn expire(id: TaskId, now: BlockNumberFor<T>) {
        let Some(task) = Tasks::<T>::get(id) else {
            return;
        };
        let TaskStatus::Running { claim, .. } = &task.status else {
            return;
        };
        ExecutorOf::<T>::remove(&claim.executor);
        Self::deposit_event(Event::DeadlineMissed {
            task: id,
            executor: claim.executor.clone(),
        });
        Self::redraw_or_refund(id, task, now);
    }

    /// Queues `id` in queue `Q` at the first block from `from` with room (at most
    /// `MaxTasksPerBlock` blocks later); returns that block.
    fn queue_within<Q>(id: TaskId, from: BlockNumberFor<T>) -> Option<BlockNumberFor<T>>
    where
        Q: frame_support::storage::StorageMap<
            BlockNumberFor<T>,
            BoundedVec<TaskId, T::MaxTasksPerBlock>,
            Query = BoundedVec<TaskId, T::MaxTasksPerBlock>,
        >,
    {
        let mut block = from;
        for _ in 0..T::MaxTasksPerBlock::get() {
            if Q::mutate(block, |queue| queue.try_push(id).is_ok()) {
                return Some(block);
            }
            block = block.saturating_add(One::one());
        }
        None
    }

    /// Settles a pre- or post-task round about task `id` (see [`OnRoundClosed`]).
    fn round_closed(
        round: RoundId,
        phase: AttestationPhase,
        id: TaskId,
        outcome: RoundOutcome,
        revealers: &[T::AccountId],
    ) {
        let Some(mut task) = Tasks::<T>::get(id) else {
            return;
        };
        let now = frame_system::Pallet::<T>::block_number();
        let (claim, passed) = match (&task.status, phase) {
            (TaskStatus::Assigned { claim, round: open }, AttestationPhase::PreTask)
                if *open == round =>
            {
                (claim.clone(), outcome == RoundOutcome::Passed)
            }
            (
                TaskStatus::Verifying {
                    claim, round: open, ..
                },
                AttestationPhase::PostTask,
            ) if *open == round => (claim.clone(), outcome == RoundOutcome::Passed),
            // A round this task no longer waits for.
            _ => return,
        };
        Self::pay_fees(&mut task, revealers);
        let executor = claim.executor.clone();
        if !passed {
            ExecutorOf::<T>::remove(&executor);
            Self::deposit_event(Event::ExecutorFailed {
                task: id,
                executor,
                phase,
                outcome,
            });
            if phase == AttestationPhase::PreTask {
                Self::redraw_or_refund(id, task, now);
            } else {
                let refunded = Self::release_all(&task);
                Tasks::<T>::remove(id);
                Self::deposit_event(Event::TaskFailed {
                    task: id,
                    refunded,
                    fees_paid: task.fees_paid,
                });
            }
            return;
        }
        match task.status {
            TaskStatus::Assigned { .. } => {
                let wanted = now.saturating_add(task.timeout);
                let Some(deadline) =
                    Self::queue_within::<DeadlineQueue<T>>(id, wanted.saturating_add(One::one()))
                else {
                    // No deadline slot within reach: the task cannot be timed, so it is not run.
                    ExecutorOf::<T>::remove(&executor);
                    Self::redraw_or_refund(id, task, now);
                    return;
                };
                let until = deadline.saturating_sub(One::one());
                task.status = TaskStatus::Running { claim, until };
                Tasks::<T>::insert(id, task);
                Self::deposit_event(Event::ExecutionStarted {
                    task: id,
                    executor,
                    until,
                });
            }
            TaskStatus::Verifying { outcome, .. } => {
                // Completed or not, the executor did its job: TimedOut, OomKilled and
                // PolicyViolation are the creator's code misbehaving.
                let paid = T::Currency::transfer_on_hold(
                    &HoldReason::Escrow.into(),
                    &task.creator,
                    &executor,
                    task.reward,
                    Precision::BestEffort,
                    Restriction::Free,
                    Fortitude::Polite,
                )
                .unwrap_or_default();
                task.reward = Zero::zero();
                Self::release_all(&task);
                T::Reputation::task_completed(&executor);
                ExecutorOf::<T>::remove(&executor);
                Tasks::<T>::remove(id);
                Self::deposit_event(Event::TaskSettled {
                    task: id,
                    executor,
                    outcome,
                    reward: paid,
                    fees_paid: task.fees_paid,
                });
            }
            _ => {}
        }
    }

    /// Invariants: every held escrow belongs to a live task and equals the sum of its creator's
    /// tasks' rewards and fee reserves; every queued task exists in the state its queue says.
    // Compiled always (tests of the runtime call it too); only try-runtime and tests run it.
    pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
        use alloc::collections::btree_map::BTreeMap;
        use frame_support::traits::fungible::InspectHold;
        use sp_runtime::TryRuntimeError;
        let mut owed: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        for (_, task) in Tasks::<T>::iter() {
            let entry = owed.entry(task.creator.clone()).or_default();
            *entry = entry.saturating_add(Self::held(&task));
        }
        for (creator, amount) in &owed {
            ensure!(
                T::Currency::balance_on_hold(&HoldReason::Escrow.into(), creator) == *amount,
                TryRuntimeError::Other("escrow held differs from the creator's open tasks")
            );
        }
        for (due, queue) in SeedQueue::<T>::iter() {
            for id in queue {
                let task = Tasks::<T>::get(id)
                    .ok_or(TryRuntimeError::Other("a queued task does not exist"))?;
                ensure!(
                    task.status == TaskStatus::AwaitingSeed { due },
                    TryRuntimeError::Other("a task in the seed queue is not awaiting that seed")
                );
            }
        }
        for (close, queue) in CloseQueue::<T>::iter() {
            for id in queue {
                let task = Tasks::<T>::get(id)
                    .ok_or(TryRuntimeError::Other("a closing task does not exist"))?;
                let TaskStatus::Claiming { closes_at, .. } = task.status else {
                    return Err(TryRuntimeError::Other("a closing task is not claiming"));
                };
                ensure!(
                    closes_at.saturating_add(One::one()) == close,
                    TryRuntimeError::Other("a task closes in the wrong block")
                );
            }
        }
        for (close, queue) in DeadlineQueue::<T>::iter() {
            for id in queue {
                let task = Tasks::<T>::get(id).ok_or(TryRuntimeError::Other(
                    "a task with a deadline does not exist",
                ))?;
                let TaskStatus::Running { until, .. } = task.status else {
                    return Err(TryRuntimeError::Other(
                        "a task with a deadline is not running",
                    ));
                };
                ensure!(
                    until.saturating_add(One::one()) == close,
                    TryRuntimeError::Other("a deadline is queued in the wrong block")
                );
            }
        }
        for (executor, id) in ExecutorOf::<T>::iter() {
            let task = Tasks::<T>::get(id).ok_or(TryRuntimeError::Other(
                "an executor holds a task that does not exist",
            ))?;
            let claim = match &task.status {
                TaskStatus::Assigned { claim, .. }
                | TaskStatus::Running { claim, .. }
                | TaskStatus::Verifying { claim, .. } => claim,
                _ => {
                    return Err(TryRuntimeError::Other(
                        "an executor holds an unassigned task",
                    ))
                }
            };
            ensure!(
                claim.executor == executor,
                TryRuntimeError::Other("an executor holds another's task")
            );
        }
        Ok(())
    }
}

impl<T: Config> OnRoundClosed<T::AccountId> for Pallet<T> {
    fn on_round_closed(
        round: RoundId,
        _subject: &T::AccountId,
        phase: AttestationPhase,
        task: Option<TaskId>,
        outcome: RoundOutcome,
        revealers: &[T::AccountId],
    ) {
        if let Some(task) = task {
            Self::round_closed(round, phase, task, outcome, revealers);
        }
    }

    fn closed_weight() -> Weight {
        T::WeightInfo::round_closed(T::Rounds::max_paid_members())
    }
}

impl<T: Config> WithdrawalGuard<T::AccountId> for Pallet<T> {
    fn withdrawal_block(who: &T::AccountId) -> Option<WithdrawalBlock> {
        ExecutorOf::<T>::contains_key(who).then_some(WithdrawalBlock::UnsettledExecutor)
    }

    fn guard_weight() -> Weight {
        T::DbWeight::get().reads(1)
    }
}
