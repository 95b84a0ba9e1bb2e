//! Executor sortition: the exponential race over VRF outputs, in exact integer arithmetic.
//!
//! Each gateway of a task's epoch snapshot turns its VRF output `u` (uniform in `(0, 1]`) into a
//! score `-ln(u) / weight`. Scores are independent exponential variables with rates equal to the
//! weights, so the lowest one belongs to gateway `i` with probability `w_i / W` (`W` the total
//! weight), and that holds whatever the threshold below which gateways may claim: the argmin of
//! independent exponentials is independent of the minimum's value.
//!
//! A gateway may claim when its score is under the task's threshold `T = c / W`, where `c` is the
//! target expected number of claimants (for small `c`, each gateway claims with probability
//! `1 - exp(-w_i c / W) ≈ w_i c / W`, about `c` in all). The runtime and the daemons compute the
//! same integers here, so a daemon knows exactly whether its claim will be accepted.
//!
//! No floating point: `-ln(u)` is computed in Q32.32 fixed point from the 128-bit VRF output by
//! a binary logarithm, and scores are compared by cross-multiplying in 256 bits, so weights of
//! any size (bond × reputation) lose no precision.
use core::cmp::Ordering;

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Fractional bits of the fixed-point numbers here (Q32.32).
pub const FRACTION_BITS: u32 = 32;
/// 1.0 in Q32.32.
pub const ONE: u64 = 1 << FRACTION_BITS;
/// ln 2 in Q0.64, rounded down (0.693147180559945309417...).
const LN_2_Q64: u128 = 0xB172_17F7_D1CF_79AB;

/// `-ln(u)` in Q32.32 for the VRF output `output` read as `u = (x + 1) / 2^128`, `x` its
/// little-endian value, so `u` is in `(0, 1]` and never 0. Off by at most a few units of the
/// last place (`2^-32`).
pub fn neg_ln(output: [u8; 16]) -> u64 {
    let x = u128::from_le_bytes(output);
    // -ln(u) = ln 2 * (128 - log2(x + 1)); x + 1 = 2^128 (x = u128::MAX) gives 0.
    let Some(v) = x.checked_add(1) else {
        return 0;
    };
    let exponent = 127 - v.leading_zeros(); // floor(log2 v), 0..=127
                                            // Mantissa in [1, 2) as Q1.63.
    let mut mantissa: u128 = if exponent >= 63 {
        v >> (exponent - 63)
    } else {
        v << (63 - exponent)
    };
    // log2(v) = exponent + log2(mantissa); the fraction bit by bit, by squaring (40 bits, so the
    // Q32.32 result is exact up to rounding once multiplied by ln 2).
    const BITS: u32 = 40;
    let mut fraction: u128 = 0;
    for _ in 0..BITS {
        mantissa = (mantissa * mantissa) >> 63;
        fraction <<= 1;
        if mantissa >= 1 << 64 {
            mantissa >>= 1;
            fraction |= 1;
        }
    }
    // 128 - log2(v) in Q.40, then times ln 2 (Q0.64) and down to Q32.32.
    let log2_v = (u128::from(exponent) << BITS) | fraction;
    let deficit = (128u128 << BITS) - log2_v; // <= 128 * 2^40 = 2^47
    let product = deficit * LN_2_Q64; // < 2^111
    (product >> (BITS + 64 - FRACTION_BITS)) as u64
}

/// `a * b` as a 256-bit number `(high, low)`.
fn wide_mul(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = u64::MAX as u128;
    let (a_hi, a_lo) = (a >> 64, a & MASK);
    let (b_hi, b_lo) = (b >> 64, b & MASK);
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_hi = a_hi * b_hi;
    let middle = (lo_lo >> 64) + (hi_lo & MASK) + (lo_hi & MASK);
    let low = (lo_lo & MASK) | (middle << 64);
    let high = hi_hi + (hi_lo >> 64) + (lo_hi >> 64) + (middle >> 64);
    (high, low)
}

/// A gateway's ticket for a task: `-ln(u)` and its weight; its score is their quotient.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct Ticket {
    /// `-ln(u)` in Q32.32 ([`neg_ln`]).
    pub neg_ln: u64,
    /// The gateway's weight in the task's epoch snapshot (never 0 for an eligible gateway).
    pub weight: u128,
}

impl Ticket {
    /// The ticket of VRF output `output` for a gateway of weight `weight`.
    pub fn new(output: [u8; 16], weight: u128) -> Self {
        Self {
            neg_ln: neg_ln(output),
            weight,
        }
    }

    /// Compares scores `neg_ln / weight` exactly; a weight of 0 scores infinity.
    pub fn cmp_score(&self, other: &Self) -> Ordering {
        match (self.weight, other.weight) {
            (0, 0) => Ordering::Equal,
            (0, _) => Ordering::Greater,
            (_, 0) => Ordering::Less,
            _ => wide_mul(u128::from(self.neg_ln), other.weight)
                .cmp(&wide_mul(u128::from(other.neg_ln), self.weight)),
        }
    }

    /// Whether the score is strictly under the threshold `target / total_weight`, `target` the
    /// expected number of claimants in Q32.32 (`2 * ONE` for two).
    pub fn is_under(&self, threshold: Threshold) -> bool {
        if self.weight == 0 || threshold.total_weight == 0 {
            return false;
        }
        // neg_ln / weight < target / total  <=>  neg_ln * total < target * weight
        wide_mul(u128::from(self.neg_ln), threshold.total_weight)
            < wide_mul(u128::from(threshold.target), self.weight)
    }
}

/// A task's claim threshold: the target number of claimants over the snapshot's total weight.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct Threshold {
    /// Expected claimants in Q32.32 (approximately; exactly `sum(1 - exp(-w_i target / W))`).
    pub target: u64,
    /// The total weight of the task's epoch snapshot.
    pub total_weight: u128,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output nearest to `u`, and `-ln` of the `u` it stands for exactly.
    fn output_of(u: f64) -> ([u8; 16], f64) {
        // x + 1 = u * 2^128
        let x = (u * 2f64.powi(128)) as u128 - 1;
        let exact = 128.0 * core::f64::consts::LN_2 - ((x + 1) as f64).ln();
        (x.to_le_bytes(), exact)
    }

    #[test]
    fn neg_ln_matches_the_real_logarithm() {
        for u in [
            1e-30, 1e-9, 0.001, 0.1, 0.25, 0.5, 0.7, 0.9, 0.999, 0.999_999,
        ] {
            let (output, exact) = output_of(u);
            let fixed = neg_ln(output) as f64 / ONE as f64;
            assert!(
                (fixed - exact).abs() < 4.0 / ONE as f64,
                "u = {u}: {fixed} against {exact}"
            );
        }
    }

    #[test]
    fn neg_ln_is_defined_on_every_output_and_monotone() {
        assert_eq!(neg_ln([0xff; 16]), 0, "u = 1");
        let smallest = neg_ln([0; 16]) as f64 / ONE as f64;
        assert!((smallest - 128.0 * 2f64.ln()).abs() < 1e-6, "{smallest}");
        let mut previous = u64::MAX;
        for i in 0..4096u128 {
            let x = i << 116; // spread over the whole range
            let value = neg_ln(x.to_le_bytes());
            assert!(value <= previous, "not decreasing at {i}");
            previous = value;
        }
    }

    #[test]
    fn wide_mul_is_exact() {
        let cases = [
            (0u128, 0u128),
            (1, u128::MAX),
            (u128::MAX, u128::MAX),
            (u64::MAX as u128 + 1, u64::MAX as u128 + 1),
            (
                0x1234_5678_9abc_def0_1122_3344_5566_7788,
                0xffee_ddcc_bbaa_9988_7766_5544_3322_1100,
            ),
        ];
        for (a, b) in cases {
            let (high, low) = wide_mul(a, b);
            assert_eq!(low, a.wrapping_mul(b), "{a} * {b}");
            // Check the high half against a 128-bit split of the operands.
            let reference = {
                let (a1, a0) = (a >> 64, a & u64::MAX as u128);
                let (b1, b0) = (b >> 64, b & u64::MAX as u128);
                let carry = ((a0 * b0) >> 64)
                    .checked_add((a1 * b0) & u64::MAX as u128)
                    .and_then(|s| s.checked_add((a0 * b1) & u64::MAX as u128))
                    .unwrap();
                a1 * b1 + ((a1 * b0) >> 64) + ((a0 * b1) >> 64) + (carry >> 64)
            };
            assert_eq!(high, reference, "{a} * {b}");
        }
    }

    #[test]
    fn scores_compare_exactly_even_with_huge_weights() {
        let heavy = Ticket {
            neg_ln: ONE,
            weight: u128::MAX,
        };
        let heavier_score = Ticket {
            neg_ln: ONE + 1,
            weight: u128::MAX,
        };
        assert_eq!(heavy.cmp_score(&heavier_score), Ordering::Less);
        // 1/2 against 2/4: equal.
        let a = Ticket {
            neg_ln: ONE,
            weight: 2,
        };
        let b = Ticket {
            neg_ln: 2 * ONE,
            weight: 4,
        };
        assert_eq!(a.cmp_score(&b), Ordering::Equal);
        let zero = Ticket {
            neg_ln: 0,
            weight: 0,
        };
        assert_eq!(zero.cmp_score(&a), Ordering::Greater);
        assert!(!zero.is_under(Threshold {
            target: ONE,
            total_weight: 10
        }));
    }

    #[test]
    fn the_threshold_edge_is_strict() {
        // score = 1/4 against threshold 1/4: not under; a hair lower is.
        let threshold = Threshold {
            target: ONE,
            total_weight: 4,
        };
        let at_edge = Ticket {
            neg_ln: ONE,
            weight: 4,
        };
        assert!(!at_edge.is_under(threshold));
        let below = Ticket {
            neg_ln: ONE - 1,
            weight: 4,
        };
        assert!(below.is_under(threshold));
    }

    /// Deterministic uniform 16-byte outputs (SplitMix64), standing in for VRF outputs.
    struct Outputs(u64);
    impl Outputs {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn next(&mut self) -> [u8; 16] {
            (u128::from(self.next_u64()) << 64 | u128::from(self.next_u64())).to_le_bytes()
        }
    }

    /// 100,000 simulated tasks: weights 1:2:10 plus a gateway at the eligibility edge (the
    /// smallest weight the snapshot admits: minimum bond times minimum score, one unit here),
    /// a target of two claimants. Among tasks with at least one claim, each gateway wins
    /// (threshold and lowest score together) with frequency within 4 sigma of w / W.
    #[test]
    fn each_gateway_wins_in_proportion_to_its_weight() {
        const TASKS: u32 = 100_000;
        let unit = 1_000_000u128;
        let weights = [unit, 2 * unit, 10 * unit, unit];
        let total: u128 = weights.iter().sum();
        let threshold = Threshold {
            target: 2 * ONE,
            total_weight: total,
        };
        let mut outputs = Outputs(0x5eed);
        let mut wins = [0u32; 4];
        let mut claimed = 0u32;
        for _ in 0..TASKS {
            let winner = weights
                .iter()
                .enumerate()
                .map(|(i, w)| (i, Ticket::new(outputs.next(), *w)))
                .filter(|(_, ticket)| ticket.is_under(threshold))
                .min_by(|(_, a), (_, b)| a.cmp_score(b));
            if let Some((i, _)) = winner {
                wins[i] += 1;
                claimed += 1;
            }
        }
        // P(at least one claim) = 1 - exp(-2): about 86% of tasks.
        let expected_claimed = f64::from(TASKS) * (1.0 - (-2f64).exp());
        let sigma = (f64::from(TASKS) * (1.0 - (-2f64).exp()) * (-2f64).exp()).sqrt();
        assert!(
            (f64::from(claimed) - expected_claimed).abs() < 4.0 * sigma,
            "{claimed} tasks claimed, {expected_claimed} expected"
        );
        for (i, w) in weights.iter().enumerate() {
            let p = *w as f64 / total as f64;
            let n = f64::from(claimed);
            let sigma = (n * p * (1.0 - p)).sqrt();
            let deviation = (f64::from(wins[i]) - n * p).abs();
            assert!(
                deviation <= 4.0 * sigma.max(1.0),
                "gateway {i} (weight {w}) won {} of {claimed}, expected {:.1} ± {:.1}",
                wins[i],
                n * p,
                sigma
            );
        }
    }
}
