//! Chain parameters that a chain spec fixes at genesis and nothing changes afterwards.
//!
//! BABE takes its epoch length from a `Get<u64>`; reading it from storage written once at
//! genesis lets the same runtime serve a dev chain with short epochs and a long-lived network
//! with long ones. Changing an epoch length after genesis would break BABE, so this pallet has
//! no calls.
pub use pallet::*;

#[frame_support::pallet]
pub mod pallet {
    use frame_support::pallet_prelude::*;

    #[pallet::config]
    pub trait Config: frame_system::Config {}

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::type_value]
    pub fn DefaultEpochDuration() -> u64 {
        crate::DEFAULT_EPOCH_DURATION
    }

    /// Length of a BABE epoch, and so of a session, in slots.
    #[pallet::storage]
    pub type EpochDuration<T> = StorageValue<_, u64, ValueQuery, DefaultEpochDuration>;

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Length of a BABE epoch in slots; zero means the runtime default.
        pub epoch_duration: u64,
        #[serde(skip)]
        pub _config: core::marker::PhantomData<T>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            if self.epoch_duration > 0 {
                EpochDuration::<T>::put(self.epoch_duration);
            }
        }
    }
}

/// The epoch length BABE uses: the value written at genesis.
pub struct EpochDurationFromGenesis<T>(core::marker::PhantomData<T>);

impl<T: Config> frame_support::traits::Get<u64> for EpochDurationFromGenesis<T> {
    fn get() -> u64 {
        EpochDuration::<T>::get()
    }
}
