//! Benchmarks of the registry and golden-measurement calls, at their worst cases:
//! - `register`: a fee deposit held, a P-256 device key (verified as wasm, with no host function: the dearest kind)
//!   into a registry holding all but one gateway;
//! - `deregister`, `suspend`: the last gateway of a full Active list;
//! - `force_activate`: into an Active list holding all but one;
//! - `add_golden`: a PCR policy with all 24 PCRs, its kind one short of its bound;
//! - `read_active_gateways`: a full Active list.
use super::*;
use capsule_pallet_traits::BenchmarkBonds;
use capsule_primitives::{
    attestation::vote_commitment,
    golden::{PcrBank, PcrPolicy, MAX_PCRS},
    hashing::sha256,
    keys::key_proof_message,
    measurement::MeasurementDigest,
};
use frame_benchmarking::v2::*;
use frame_support::traits::Hooks;
use frame_system::RawOrigin;
use sp_core::crypto::KeyTypeId;
use sp_runtime::traits::One;

const BENCH_KEYS: KeyTypeId = KeyTypeId(*b"cbch");

/// Registered keys for gateway `index`, without proofs (for filling the registry).
fn filler_info<T: Config>(index: u32, status: GatewayStatus) -> GatewayInfo<BlockNumberFor<T>> {
    let key = |role: &[u8]| blake2_256(&(role, index).encode());
    GatewayInfo {
        device_key: DevicePublicKey::Ed25519(key(b"device")),
        vrf_key: key(b"vrf"),
        network_key: key(b"network"),
        level: HardwareLevel::HpcTpm,
        fingerprint: FingerprintRoot(key(b"fingerprint")),
        status,
        registered_at: Zero::zero(),
    }
}

/// Fills the registry with `count` Active gateways.
fn fill_active<T: Config>(count: u32) -> alloc::vec::Vec<T::AccountId> {
    // Genesis may have registered gateways already: fill up to `count` in all.
    let present = GatewayCount::<T>::get();
    (present..count.max(present))
        .map(|index| {
            let who: T::AccountId = account("filler", index, 0);
            Pallet::<T>::insert_gateway(&who, filler_info::<T>(index, GatewayStatus::Pending))
                .expect("within bounds");
            Pallet::<T>::activate(&who).expect("within bounds");
            who
        })
        .collect()
}

/// Keys for `who`, each with a valid proof: a P-256 device key, keystore-made VRF and network
/// keys.
fn proven_keys<T: Config>(who: &T::AccountId) -> GatewayKeys {
    use p256::ecdsa::{signature::hazmat::PrehashSigner, Signature, SigningKey};
    let genesis = Pallet::<T>::genesis_hash();
    let account = account_bytes(who);
    let message = |role| key_proof_message(role, &genesis, &account);

    let signing = SigningKey::from_slice(&[0x5a; 32]).expect("a valid P-256 scalar");
    let device_key: [u8; 33] = signing
        .verifying_key()
        .to_encoded_point(true)
        .as_bytes()
        .try_into()
        .expect("a compressed point is 33 bytes");
    let signature: Signature = signing
        .sign_prehash(&sha256(&message(KeyRole::Device)))
        .expect("P-256 signs");

    let vrf = sp_io::crypto::sr25519_generate(BENCH_KEYS, None);
    let vrf_proof = sp_io::crypto::sr25519_sign(BENCH_KEYS, &vrf, &message(KeyRole::Vrf))
        .expect("the keystore holds the key it made");
    let network = sp_io::crypto::ed25519_generate(BENCH_KEYS, None);
    let network_proof =
        sp_io::crypto::ed25519_sign(BENCH_KEYS, &network, &message(KeyRole::Network))
            .expect("the keystore holds the key it made");
    GatewayKeys {
        device_key: DevicePublicKey::EcdsaP256(device_key),
        device_proof: DeviceSignature::EcdsaP256(signature.to_bytes().into()),
        vrf_key: vrf.0,
        vrf_proof: vrf_proof.0,
        network_key: network.0,
        network_proof: network_proof.0,
    }
}

/// Gives `who` enough free balance for a round's fee deposit, on top of what it has.
fn fund<T: Config>(who: &T::AccountId) {
    use frame_support::traits::fungible::Mutate;
    let extra = Pallet::<T>::fee_deposit()
        .saturating_mul(10u32.into())
        .saturating_add(T::Currency::minimum_balance());
    T::Currency::set_balance(who, T::Currency::balance(who).saturating_add(extra));
}

/// Active, bonded gateways up to `count` in the registry, all in the current epoch's snapshot
/// with weight 1.
fn committee_pool<T: Config>(count: u32) -> alloc::vec::Vec<T::AccountId> {
    let pool = fill_active::<T>(count);
    for member in &pool {
        T::BenchmarkHelper::bond(member);
    }
    T::BenchmarkHelper::set_snapshot(
        T::Snapshots::current_epoch(),
        pool.iter().map(|member| (member.clone(), 1)).collect(),
    );
    pool
}

/// A registered, bonded, funded subject that is not in the pool.
fn subject_gateway<T: Config>(index: u32) -> T::AccountId {
    let who: T::AccountId = account("subject", index, 0);
    let info = filler_info::<T>(u32::MAX - index, GatewayStatus::Active);
    Gateways::<T>::insert(&who, info);
    GatewayCount::<T>::mutate(|count| *count = count.saturating_add(1));
    for (role, key) in Pallet::<T>::key_ids(&Gateways::<T>::get(&who).expect("inserted")) {
        KeyOwners::<T>::insert(key_id(role, &key), &who);
    }
    T::BenchmarkHelper::bond(&who);
    fund::<T>(&who);
    who
}

/// Opens a registration round about `subject` and seeds it now, so its committee is drawn.
fn seeded_round<T: Config>(subject: &T::AccountId) -> RoundId {
    let id = Pallet::<T>::open_round(subject, AttestationPhase::Registration, None, None, None)
        .expect("one round per subject, within the block cap");
    let now = frame_system::Pallet::<T>::block_number();
    Pallet::<T>::seed_round(id, now);
    SeedQueue::<T>::mutate(now.saturating_add(T::SeedBlocks::get().into()), |queue| {
        queue.retain(|queued| *queued != id)
    });
    id
}

fn evidence_of(round: RoundId, seat: u32) -> [u8; 32] {
    blake2_256(&(b"evidence", round, seat).encode())
}

fn salt_of(seat: u32) -> [u8; 32] {
    blake2_256(&(b"salt", seat).encode())
}

fn commitment_of<T: Config>(
    round: RoundId,
    member: &T::AccountId,
    seat: u32,
    verdict: Verdict,
) -> [u8; 32] {
    vote_commitment(
        round,
        &account_bytes(member),
        verdict,
        &evidence_of(round, seat),
        &salt_of(seat),
    )
}

/// The commit and reveal deadlines of a round.
fn deadlines<T: Config>(round: RoundId) -> (BlockNumberFor<T>, BlockNumberFor<T>) {
    match Rounds::<T>::get(round).map(|r| r.status) {
        Some(RoundStatus::Voting {
            commit_until,
            reveal_until,
        }) => (commit_until, reveal_until),
        _ => panic!("the round is voting"),
    }
}

fn full_pcr_policy() -> GoldenMeasurement {
    GoldenMeasurement::HpcPcrPolicy(PcrPolicy {
        image: MeasurementDigest([7; 32]),
        bank: PcrBank::Sha256,
        pcrs: BoundedVec::truncate_from(
            (0..MAX_PCRS as u8)
                .map(|index| (index, [index; 32]))
                .collect(),
        ),
    })
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register() {
        let _ = fill_active::<T>(T::MaxGateways::get().saturating_sub(1));
        let who: T::AccountId = whitelisted_caller();
        T::BenchmarkHelper::bond(&who);
        fund::<T>(&who);
        let keys = alloc::boxed::Box::new(proven_keys::<T>(&who));
        #[extrinsic_call]
        _(
            RawOrigin::Signed(who.clone()),
            keys,
            HardwareLevel::HpcTpm,
            FingerprintRoot([1; 32]),
        );
        assert_eq!(
            Gateways::<T>::get(&who).map(|info| info.status),
            Some(GatewayStatus::Pending)
        );
    }

    #[benchmark]
    fn deregister() {
        let who = fill_active::<T>(T::MaxGateways::get())
            .pop()
            .expect("room for one at least");
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(!Gateways::<T>::contains_key(&who));
    }

    #[benchmark]
    fn force_activate() -> Result<(), BenchmarkError> {
        let _ = fill_active::<T>(T::MaxGateways::get().saturating_sub(1));
        let who: T::AccountId = account("pending", 0, 0);
        Pallet::<T>::insert_gateway(&who, filler_info::<T>(u32::MAX, GatewayStatus::Pending))?;
        let origin =
            T::GovernanceOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        #[extrinsic_call]
        _(origin as T::RuntimeOrigin, who.clone());
        assert!(Pallet::<T>::is_active(&who));
        Ok(())
    }

    #[benchmark]
    fn add_golden() -> Result<(), BenchmarkError> {
        for index in 0..T::MaxGoldenPerKind::get().saturating_sub(1) {
            let mut policy = full_pcr_policy();
            if let GoldenMeasurement::HpcPcrPolicy(ref mut p) = policy {
                p.image = MeasurementDigest(blake2_256(&index.encode()));
            }
            Pallet::<T>::insert_golden(policy)?;
        }
        let origin =
            T::GovernanceOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        #[extrinsic_call]
        _(origin as T::RuntimeOrigin, full_pcr_policy());
        assert!(Golden::<T>::contains_key(full_pcr_policy().id()));
        Ok(())
    }

    #[benchmark]
    fn retire_golden() -> Result<(), BenchmarkError> {
        Pallet::<T>::insert_golden(full_pcr_policy())?;
        let origin =
            T::GovernanceOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        #[extrinsic_call]
        _(origin as T::RuntimeOrigin, full_pcr_policy().id());
        assert!(!Golden::<T>::contains_key(full_pcr_policy().id()));
        Ok(())
    }

    #[benchmark]
    fn read_active_gateways() {
        let _ = fill_active::<T>(T::MaxGateways::get());
        #[block]
        {
            let _ = <Pallet<T> as GatewayRegistry<_>>::active_gateways();
        }
    }

    #[benchmark]
    fn suspend() {
        let who = fill_active::<T>(T::MaxGateways::get())
            .pop()
            .expect("room for one at least");
        #[block]
        {
            Pallet::<T>::suspend(&who, SuspensionReason::BondBelowMinimum);
        }
        assert!(!Pallet::<T>::is_active(&who));
    }

    #[benchmark]
    fn commit() {
        committee_pool::<T>(T::MaxGateways::get().saturating_sub(2));
        let round = seeded_round::<T>(&subject_gateway::<T>(0));
        let member = Rounds::<T>::get(round).expect("open").committee[0].clone();
        let commitment = commitment_of::<T>(round, &member, 0, Verdict::Pass);
        #[extrinsic_call]
        _(RawOrigin::Signed(member), round, commitment);
    }

    #[benchmark]
    fn reveal() {
        committee_pool::<T>(T::MaxGateways::get().saturating_sub(2));
        let subject = subject_gateway::<T>(0);
        let round = seeded_round::<T>(&subject);
        let committee = Rounds::<T>::get(round).expect("open").committee;
        for (seat, member) in committee.iter().enumerate() {
            let c = commitment_of::<T>(round, member, seat as u32, Verdict::Pass);
            Pallet::<T>::commit(RawOrigin::Signed(member.clone()).into(), round, c)
                .expect("a member commits in time");
        }
        // The subject's records are full of evidence to compare against.
        let record = ClosedRecord::<T> {
            round: RoundId(u64::MAX),
            subject: subject.clone(),
            phase: AttestationPhase::Audit,
            outcome: RoundOutcome::Passed,
            evidence: BoundedVec::truncate_from(
                (0..T::MaxCommittee::get())
                    .map(|i| blake2_256(&(b"old", i).encode()))
                    .collect(),
            ),
            session_keys: None,
            task: None,
            closed_at: Zero::zero(),
        };
        Records::<T>::insert(
            &subject,
            BoundedVec::truncate_from(alloc::vec![record; T::MaxRecordsPerGateway::get() as usize]),
        );
        let (commit_until, _) = deadlines::<T>(round);
        frame_system::Pallet::<T>::set_block_number(commit_until.saturating_add(One::one()));
        let last = committee.len() as u32 - 1;
        for (seat, member) in committee.iter().enumerate().take(last as usize) {
            Pallet::<T>::reveal(
                RawOrigin::Signed(member.clone()).into(),
                round,
                Verdict::Pass,
                evidence_of(round, seat as u32),
                salt_of(seat as u32),
            )
            .expect("a member reveals in time");
        }
        let member = committee[last as usize].clone();
        #[extrinsic_call]
        _(
            RawOrigin::Signed(member),
            round,
            Verdict::Pass,
            evidence_of(round, last),
            salt_of(last),
        );
    }

    #[benchmark]
    fn report() {
        let subject = subject_gateway::<T>(0);
        let reporter = subject_gateway::<T>(1);
        #[extrinsic_call]
        _(RawOrigin::Signed(reporter), subject.clone(), [7; 32]);
        assert!(RoundOf::<T>::contains_key(&subject));
    }

    #[benchmark]
    fn rotate_keys() {
        let who: T::AccountId = whitelisted_caller();
        Pallet::<T>::insert_gateway(&who, filler_info::<T>(u32::MAX - 7, GatewayStatus::Pending))
            .expect("room");
        Pallet::<T>::activate(&who).expect("room");
        fund::<T>(&who);
        // A VRF key rotated earlier and in force now: the call promotes it first.
        let earlier = blake2_256(b"earlier vrf key");
        KeyOwners::<T>::insert(key_id(KeyRole::Vrf, &earlier), &who);
        NextVrfKey::<T>::insert(&who, (earlier, T::Snapshots::current_epoch()));
        let keys = alloc::boxed::Box::new(proven_keys::<T>(&who));
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), keys);
        assert!(RotatingKeys::<T>::contains_key(&who));
    }

    #[benchmark]
    fn on_initialize_seeding(n: Linear<0, { T::MaxRoundsPerBlock::get() }>) {
        committee_pool::<T>(T::MaxGateways::get().saturating_sub(T::MaxRoundsPerBlock::get()));
        let opened_at = frame_system::Pallet::<T>::block_number();
        let rounds: alloc::vec::Vec<RoundId> = (0..n)
            .map(|index| {
                Pallet::<T>::open_round(
                    &subject_gateway::<T>(index),
                    AttestationPhase::Registration,
                    None,
                    None,
                    None,
                )
                .expect("within the block cap")
            })
            .collect();
        let due = opened_at.saturating_add(T::SeedBlocks::get().into());
        frame_system::Pallet::<T>::set_block_number(due);
        #[block]
        {
            Pallet::<T>::on_initialize(due);
        }
        for round in rounds {
            assert!(Rounds::<T>::get(round).is_some_and(|r| r.seed.is_some()));
        }
    }

    #[benchmark]
    fn on_initialize_closing(n: Linear<0, { T::MaxRoundsPerBlock::get() }>) {
        let pool =
            committee_pool::<T>(T::MaxGateways::get().saturating_sub(T::MaxRoundsPerBlock::get()));
        let seats = T::MaxCommittee::get().min(pool.len() as u32);
        let now = frame_system::Pallet::<T>::block_number().saturating_add(100u32.into());
        let mut queue = BoundedVec::<RoundId, T::MaxRoundsPerBlock>::new();
        for index in 0..n {
            let subject = subject_gateway::<T>(index);
            let id = Pallet::<T>::open_round(
                &subject,
                AttestationPhase::Audit,
                None,
                Some(subject_gateway::<T>(1_000 + index)),
                None,
            )
            .expect("within the block cap");
            let mut round = Rounds::<T>::get(id).expect("opened");
            // A full committee, every member revealed Fail: the subject is slashed and locked
            // out, every member counted and paid.
            round.committee = BoundedVec::truncate_from(pool[..seats as usize].to_vec());
            round.votes = BoundedVec::truncate_from(
                (0..seats)
                    .map(|seat| MemberVote {
                        commitment: Some([0; 32]),
                        reveal: Some((Verdict::Fail, evidence_of(id, seat))),
                    })
                    .collect(),
            );
            round.status = RoundStatus::Voting {
                commit_until: now.saturating_sub(2u32.into()),
                reveal_until: now.saturating_sub(One::one()),
            };
            round.seed = Some([1; 32]);
            Rounds::<T>::insert(id, round);
            queue.try_push(id).expect("n is at most the cap");
        }
        let _ = SeedQueue::<T>::clear(u32::MAX, None);
        CloseQueue::<T>::insert(now, queue);
        frame_system::Pallet::<T>::set_block_number(now);
        #[block]
        {
            Pallet::<T>::on_initialize(now);
        }
        assert!(Rounds::<T>::iter().next().is_none());
    }

    impl_benchmark_test_suite!(
        Pallet,
        crate::mock::ExtBuilder::default().build(),
        crate::mock::Test
    );
}
