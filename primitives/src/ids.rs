//! Identifiers that cross crate boundaries: never bare integers.
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug,
            Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
        )]
        pub struct $name(pub u64);

        impl $name {
            /// The id after this one, or `None` when the counter is exhausted.
            pub fn next(self) -> Option<Self> {
                self.0.checked_add(1).map(Self)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }
    };
}

id_newtype!(
    /// A task posted to the task market.
    TaskId
);
id_newtype!(
    /// An attestation round (registration, pre-task, post-task or audit).
    RoundId
);
id_newtype!(
    /// A BABE epoch, which is also a session.
    EpochIndex
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_encode_as_little_endian_u64() {
        assert_eq!(TaskId(1).encode(), hex::decode("0100000000000000").unwrap());
        assert_eq!(
            RoundId(0x0102).encode(),
            hex::decode("0201000000000000").unwrap()
        );
        assert_eq!(EpochIndex(u64::MAX).encode(), [0xff; 8]);
        assert_eq!(TaskId::max_encoded_len(), 8);
    }

    #[test]
    fn next_stops_at_the_end() {
        assert_eq!(TaskId(7).next(), Some(TaskId(8)));
        assert_eq!(RoundId(u64::MAX).next(), None);
    }
}
