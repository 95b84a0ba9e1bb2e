//! The task market: creating and cancelling tasks (users), claiming them with a VRF ticket and
//! submitting results (executing gateways), and reading tasks, snapshots and escrow.
use capsule_primitives::{
    capsule::CapsuleCid,
    ids::{EpochIndex, RoundId, TaskId},
    keys::HpcSessionKeys,
    measurement::ImageDigest,
    policy::PolicyDigest,
    sortition::Threshold,
    task::ResultManifest,
    vrf::VrfProofBytes,
};
use codec::Encode;

use crate::{
    chain, expect_event, recode,
    sortition::{TaskTicket, VrfSigner},
    AccountId32, ChainClient, ChainError, Keypair,
};

use chain::runtime_types::pallet_task_market as market_types;

/// A task as the chain keeps it (digests and CIDs only) with where it stands.
pub type Task = market_types::Task;
/// Where a task stands: awaiting its seed, claiming, assigned, running or verifying.
pub type TaskStatus = market_types::TaskStatus;
/// An epoch's sortition snapshot: who may be drawn and with what weight.
pub type EpochSnapshot = chain::runtime_types::capsule_pallet_traits::EpochSnapshot<AccountId32>;

/// What a creator asks for: the function image it pins, the input capsules, the policy the
/// executor enforces, who may open the results, and how many blocks the run may take.
#[derive(Clone, Debug, PartialEq, Eq, Encode)]
pub struct NewTask {
    pub image: ImageDigest,
    pub inputs: Vec<CapsuleCid>,
    pub policy: PolicyDigest,
    pub recipients: Vec<AccountId32>,
    pub timeout: u32,
}

/// A created task: its id and the block at which its draw is seeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreatedTask {
    pub task: TaskId,
    pub seeded_at: u32,
}

/// An open draw as a gateway needs it to compute its ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenDraw {
    pub epoch: EpochIndex,
    pub seed: [u8; 32],
    pub threshold: Threshold,
    /// The last block that takes claims.
    pub closes_at: u32,
}

impl ChainClient {
    /// Posts a task and holds `reward` plus the worst-case verifier-fee reserve from the signer
    /// in escrow. The task is seeded, and its executor drawn, a few blocks later.
    pub async fn create_task(
        &self,
        signer: &Keypair,
        task: &NewTask,
        reward: u128,
    ) -> Result<CreatedTask, ChainError> {
        const CALL: &str = "task_market.create_task";
        // `NewTask` encodes field for field as the runtime's `TaskSpec` (vectors as bounded
        // vectors): the runtime checks the bounds.
        let spec: market_types::TaskSpec = recode("task spec", task)?;
        let tx = chain::transactions()
            .task_market()
            .create_task(spec, reward);
        let events = self.submit(CALL, tx, signer).await?;
        let created =
            expect_event::<chain::task_market::events::TaskCreated>(&events, CALL, "TaskCreated")?;
        Ok(CreatedTask {
            task: TaskId(created.task.0),
            seeded_at: created.seeded_at,
        })
    }

    /// Cancels the signer's task before anyone claimed it: the escrow returns minus the
    /// cancellation fee.
    pub async fn cancel_task(&self, signer: &Keypair, task: TaskId) -> Result<(), ChainError> {
        let tx = chain::transactions()
            .task_market()
            .cancel(generated_task(task));
        self.submit("task_market.cancel", tx, signer)
            .await
            .map(drop)
    }

    /// Claims `task` with the signer's ticket, naming the HPC session keys its pre-task round
    /// will attest. Returns whether the claim leads the draw so far.
    pub async fn claim(
        &self,
        signer: &Keypair,
        task: TaskId,
        proof: VrfProofBytes,
        session_keys: HpcSessionKeys,
    ) -> Result<bool, ChainError> {
        const CALL: &str = "task_market.claim";
        let tx = chain::transactions().task_market().claim(
            generated_task(task),
            recode("VRF proof", &proof)?,
            recode("session keys", &session_keys)?,
        );
        let events = self.submit(CALL, tx, signer).await?;
        let claimed =
            expect_event::<chain::task_market::events::Claimed>(&events, CALL, "Claimed")?;
        Ok(claimed.leading)
    }

    /// Submits the executor's result manifest, signed by the Ed25519 session key its pre-task
    /// round attested. Returns the post-task round that decides the payment.
    pub async fn submit_result(
        &self,
        signer: &Keypair,
        manifest: &ResultManifest,
        signature: [u8; 64],
    ) -> Result<RoundId, ChainError> {
        const CALL: &str = "task_market.submit_result";
        let tx = chain::transactions()
            .task_market()
            .submit_result(recode("result manifest", manifest)?, signature);
        let events = self.submit(CALL, tx, signer).await?;
        let submitted = expect_event::<chain::task_market::events::ResultSubmitted>(
            &events,
            CALL,
            "ResultSubmitted",
        )?;
        Ok(RoundId(submitted.round.0))
    }

    /// A task not yet settled (settled and refunded tasks are gone; their events remain).
    pub async fn task(&self, task: TaskId) -> Result<Option<Task>, ChainError> {
        let addr = chain::storage().task_market().tasks();
        self.fetch("TaskMarket.Tasks", addr, (generated_task(task),))
            .await
    }

    /// The task `who` executes, if any (from its win until the task settles).
    pub async fn executing(&self, who: &AccountId32) -> Result<Option<TaskId>, ChainError> {
        let addr = chain::storage().task_market().executor_of();
        let task = self.fetch("TaskMarket.ExecutorOf", addr, (*who,)).await?;
        Ok(task.map(|task| TaskId(task.0)))
    }

    /// The task's draw, if it is taking claims.
    pub async fn open_draw(&self, task: TaskId) -> Result<Option<OpenDraw>, ChainError> {
        let Some(task) = self.task(task).await? else {
            return Ok(None);
        };
        let TaskStatus::Claiming {
            epoch,
            seed,
            threshold,
            closes_at,
            ..
        } = task.status
        else {
            return Ok(None);
        };
        Ok(Some(OpenDraw {
            epoch: EpochIndex(epoch.0),
            seed,
            threshold: recode("threshold", &threshold)?,
            closes_at,
        }))
    }

    /// The sortition snapshot of `epoch`, if it is still kept.
    pub async fn snapshot(&self, epoch: EpochIndex) -> Result<Option<EpochSnapshot>, ChainError> {
        let addr = chain::storage().reputation().snapshots();
        let epoch = chain::runtime_types::capsule_primitives::ids::EpochIndex(epoch.0);
        self.fetch("Reputation.Snapshots", addr, (epoch,)).await
    }

    /// `who`'s ticket for `task`'s open draw, if it may claim it: `who` is in the draw's
    /// snapshot and its score is under the threshold. `None` when the task is not claiming.
    pub async fn ticket_for(
        &self,
        vrf: &VrfSigner,
        who: &AccountId32,
        task: TaskId,
    ) -> Result<Option<TaskTicket>, ChainError> {
        let Some(draw) = self.open_draw(task).await? else {
            return Ok(None);
        };
        let weight = self
            .snapshot(draw.epoch)
            .await?
            .and_then(|snapshot| {
                snapshot
                    .members
                    .0
                    .into_iter()
                    .find(|entry| &entry.account == who)
            })
            .map_or(0, |entry| entry.weight);
        if weight == 0 {
            return Ok(None);
        }
        Ok(vrf.task_ticket(draw.seed, task, who.0, weight, draw.threshold))
    }

    /// What `who` holds in task escrow (as a creator), over all its tasks.
    pub async fn escrow_held(&self, who: &AccountId32) -> Result<u128, ChainError> {
        use chain::runtime_types::capsule_runtime::RuntimeHoldReason;
        let addr = chain::storage().balances().holds();
        let holds = self.fetch("Balances.Holds", addr, (*who,)).await?;
        Ok(holds
            .map(|holds| holds.0)
            .unwrap_or_default()
            .into_iter()
            .filter(|hold| {
                matches!(
                    hold.id,
                    RuntimeHoldReason::TaskMarket(market_types::pallet::HoldReason::Escrow)
                )
            })
            .map(|hold| hold.amount)
            .sum())
    }

    /// `who`'s free balance.
    pub async fn free_balance(&self, who: &AccountId32) -> Result<u128, ChainError> {
        let addr = chain::storage().system().account();
        let account = self.fetch("System.Account", addr, (*who,)).await?;
        Ok(account.map_or(0, |account| account.data.free))
    }
}

/// A task id as the generated API wants it (the same `u64` newtype).
fn generated_task(task: TaskId) -> chain::runtime_types::capsule_primitives::ids::TaskId {
    chain::runtime_types::capsule_primitives::ids::TaskId(task.0)
}
