//! Checks of the assembled runtime: the presets build a consistent state, and the weights of
//! the hooks and calls leave room in a block.
use crate::{
    configs::{RuntimeBlockWeights, MAX_GATEWAYS},
    genesis_config_presets, Attestation, Deposit, Reputation, Runtime, RuntimeGenesisConfig,
    System, TaskMarket,
};
use frame_support::{
    dispatch::DispatchClass,
    traits::{fungible::Inspect, Get},
    weights::Weight,
};
use pallet_deposit::WeightInfo as _;
use pallet_reputation::WeightInfo as _;
use serde_json::Value;
use sp_keyring::Sr25519Keyring;
use sp_runtime::BuildStorage;

/// Merges a preset's JSON patch into the default genesis, as the chain-spec builder does.
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

fn preset_state(patch: Value) -> sp_io::TestExternalities {
    let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
    merge(&mut config, patch);
    let config: RuntimeGenesisConfig = serde_json::from_value(config).expect("the preset parses");
    let storage = config.build_storage().expect("the preset builds");
    sp_io::TestExternalities::new(storage)
}

#[test]
fn presets_bond_and_score_their_gateways_and_endow_the_treasury() {
    // (preset, genesis gateways, of which validators)
    for (patch, validators, authorities) in [
        (genesis_config_presets::development_config_genesis(), 1, 1),
        (genesis_config_presets::dev_committee_config_genesis(), 4, 1),
        (genesis_config_presets::local_config_genesis(), 4, 4),
    ] {
        preset_state(patch).execute_with(|| {
            System::set_block_number(1);
            let bonded = pallet_deposit::Ledgers::<Runtime>::iter().count();
            assert_eq!(bonded, validators);
            let alice = Sr25519Keyring::Alice.to_account_id();
            assert_eq!(
                <Deposit as capsule_pallet_traits::BondInspect<_>>::bonded(&alice),
                genesis_config_presets::GENESIS_BOND
            );
            assert_eq!(
                Reputation::effective_score(&alice),
                genesis_config_presets::GENESIS_SCORE
            );
            let treasury = Deposit::treasury_account();
            assert!(pallet_balances::Pallet::<Runtime>::balance(&treasury) > 0);
            assert_eq!(
                <Attestation as capsule_pallet_traits::GatewayRegistry<_>>::active_gateways().len(),
                validators,
                "the preset gateways are Active"
            );
            assert_eq!(
                pallet_session::Validators::<Runtime>::get().len(),
                authorities
            );
            Attestation::do_try_state().expect("attestation invariants hold at genesis");
            Deposit::do_try_state().expect("deposit invariants hold at genesis");
            Reputation::do_try_state().expect("reputation invariants hold at genesis");
            TaskMarket::do_try_state().expect("task-market invariants hold at genesis");
        });
    }
}

#[test]
fn dev_committee_has_enough_genesis_gateways_to_slash_one_of_them() {
    preset_state(genesis_config_presets::dev_committee_config_genesis()).execute_with(|| {
        let gateways =
            <Attestation as capsule_pallet_traits::GatewayRegistry<_>>::active_gateways().len();
        let min = <Runtime as pallet_attestation::Config>::MinSlashCommittee::get();
        // An executor's rounds are judged by the others.
        assert!(
            gateways as u32 > min,
            "{gateways} genesis gateways, MinSlashCommittee {min}"
        );
        let committee = <Runtime as pallet_attestation::Config>::CommitteeSize::get();
        assert!(
            gateways as u32 <= committee,
            "every genesis gateway sits on the committee"
        );
    });
}

#[test]
fn the_epoch_snapshot_at_most_gateways_takes_under_a_tenth_of_a_block() {
    let block = RuntimeBlockWeights::get().max_block;
    let hook = <Runtime as pallet_reputation::Config>::WeightInfo::snapshot(MAX_GATEWAYS)
        .saturating_add(<Runtime as pallet_reputation::Config>::WeightInfo::on_initialize_idle());
    assert!(
        hook.all_lte(Weight::from_parts(
            block.ref_time() / 10,
            block.proof_size() / 10
        )),
        "snapshot hook {hook:?} against block {block:?}"
    );
}

#[test]
fn every_deposit_call_fits_in_a_normal_extrinsic() {
    let max = RuntimeBlockWeights::get()
        .get(DispatchClass::Normal)
        .max_extrinsic
        .expect("normal extrinsics are limited");
    type W = <Runtime as pallet_deposit::Config>::WeightInfo;
    for (call, weight) in [
        ("bond", W::bond()),
        ("unbond", W::unbond()),
        ("withdraw_unbonded", W::withdraw_unbonded()),
        ("slash", W::slash()),
        ("expire_slash_records(16)", W::expire_slash_records(16)),
    ] {
        assert!(
            weight.all_lte(max),
            "{call} weighs {weight:?}, more than {max:?}"
        );
        assert!(weight.ref_time() > 0, "{call} has a measured weight");
    }
}
