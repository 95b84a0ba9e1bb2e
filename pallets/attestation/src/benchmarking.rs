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
    golden::{PcrBank, PcrPolicy, MAX_PCRS},
    hashing::sha256,
    keys::key_proof_message,
    measurement::MeasurementDigest,
};
use frame_benchmarking::v2::*;
use frame_system::RawOrigin;
use sp_core::crypto::KeyTypeId;

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
fn fill_active<T: Config>(count: u32) {
    for index in 0..count {
        let who: T::AccountId = account("filler", index, 0);
        Pallet::<T>::insert_gateway(&who, filler_info::<T>(index, GatewayStatus::Pending))
            .expect("within bounds");
        Pallet::<T>::activate(&who).expect("within bounds");
    }
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
        fill_active::<T>(T::MaxGateways::get().saturating_sub(1));
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
        fill_active::<T>(T::MaxGateways::get());
        let who: T::AccountId = account("filler", T::MaxGateways::get().saturating_sub(1), 0);
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(!Gateways::<T>::contains_key(&who));
    }

    #[benchmark]
    fn force_activate() -> Result<(), BenchmarkError> {
        fill_active::<T>(T::MaxGateways::get().saturating_sub(1));
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
        fill_active::<T>(T::MaxGateways::get());
        #[block]
        {
            let _ = <Pallet<T> as GatewayRegistry<_>>::active_gateways();
        }
    }

    #[benchmark]
    fn suspend() {
        fill_active::<T>(T::MaxGateways::get());
        let who: T::AccountId = account("filler", T::MaxGateways::get().saturating_sub(1), 0);
        #[block]
        {
            Pallet::<T>::suspend(&who, SuspensionReason::BondBelowMinimum);
        }
        assert!(!Pallet::<T>::is_active(&who));
    }

    impl_benchmark_test_suite!(
        Pallet,
        crate::mock::ExtBuilder::default().build(),
        crate::mock::Test
    );
}
