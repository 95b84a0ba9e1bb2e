//! Counting a committee's revealed votes.
use capsule_primitives::attestation::Verdict;

/// How many matching reveals decide a round of `committee` members: ⌈2/3 · committee⌉.
pub fn quorum(committee: u32) -> u32 {
    committee.saturating_mul(2).saturating_add(2) / 3
}

/// How many reveals said Pass and how many said Fail.
pub fn count(reveals: impl IntoIterator<Item = Verdict>) -> (u32, u32) {
    reveals
        .into_iter()
        .fold((0, 0), |(pass, fail), verdict| match verdict {
            Verdict::Pass => (pass.saturating_add(1), fail),
            Verdict::Fail => (pass, fail.saturating_add(1)),
        })
}

/// The verdict a supermajority of the committee revealed, if any.
pub fn supermajority(
    reveals: impl IntoIterator<Item = Verdict>,
    committee: u32,
) -> Option<Verdict> {
    let (pass, fail) = count(reveals);
    decide(pass, fail, committee)
}

/// The verdict `pass` and `fail` matching reveals decide in a committee of `committee`, if any.
pub fn decide(pass: u32, fail: u32, committee: u32) -> Option<Verdict> {
    let needed = quorum(committee);
    if pass >= needed {
        Some(Verdict::Pass)
    } else if fail >= needed {
        Some(Verdict::Fail)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_primitives::hashing::blake2_256;
    use codec::Encode;

    #[test]
    fn quorum_is_two_thirds_rounded_up() {
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 9, 10].map(quorum),
            [1, 2, 2, 3, 4, 4, 6, 7]
        );
    }

    #[test]
    fn exactly_two_thirds_decides_and_one_short_does_not() {
        use Verdict::*;
        assert_eq!(supermajority([Pass, Pass, Fail], 3), Some(Pass));
        assert_eq!(
            supermajority([Pass, Fail], 3),
            None,
            "split with one absent"
        );
        assert_eq!(
            supermajority([Fail, Fail], 3),
            Some(Fail),
            "absent members count against"
        );
        assert_eq!(supermajority([Pass, Pass, Pass, Fail, Fail], 6), None);
        assert_eq!(supermajority([Pass; 4], 6), Some(Pass));
        assert_eq!(supermajority([], 3), None);
    }

    /// Over random reveal sets, the outcome is the verdict at least ⌈2/3⌉ of the committee
    /// revealed, or none; never a verdict without its supermajority.
    #[test]
    fn outcomes_are_a_supermajority_or_inconclusive() {
        for case in 0u32..5_000 {
            let bytes = blake2_256(&case.encode());
            let committee = 1 + u32::from(bytes[0] % 12);
            let revealed = u32::from(bytes[1]) % (committee + 1);
            let reveals: Vec<Verdict> = (0..revealed)
                .map(|i| {
                    if bytes[2 + i as usize] & 1 == 0 {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    }
                })
                .collect();
            let pass = reveals.iter().filter(|v| **v == Verdict::Pass).count() as u32;
            let fail = revealed - pass;
            match supermajority(reveals.iter().copied(), committee) {
                Some(Verdict::Pass) => assert!(3 * pass >= 2 * committee, "case {case}"),
                Some(Verdict::Fail) => assert!(3 * fail >= 2 * committee, "case {case}"),
                None => assert!(
                    3 * pass < 2 * committee && 3 * fail < 2 * committee,
                    "case {case}: a supermajority was missed"
                ),
            }
        }
    }
}
