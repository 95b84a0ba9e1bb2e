//! Weighted sampling without replacement: how a round's committee is drawn from the epoch
//! snapshot.
//!
//! Seat `i` draws a number below the remaining total weight from
//! `BLAKE2b-256(tag ‖ seed ‖ i)` (its first 16 bytes, little-endian, modulo the total) and takes
//! the candidate whose cumulative weight range holds it; that candidate leaves the pool. So each
//! seat goes to a remaining candidate with probability weight / remaining total, the first seat
//! with probability `w / total`. The modulo's bias is at most `total / 2^128`: below 2^-38 for
//! any realistic total (scores up to 2^22 times bonds up to 2^60 times 256 gateways).
//!
//! The cost is `O(n · k)` comparisons for `n` candidates and `k` seats.
use alloc::vec::Vec;
use capsule_primitives::hashing::blake2_256;
use codec::Encode;

/// The domain tag of committee draws.
pub const COMMITTEE_DRAW_TAG: &[u8] = b"capsule/committee-draw/v1";

/// The number seat `seat` draws, before reduction.
fn draw(seed: &[u8; 32], seat: u32) -> u128 {
    let digest = blake2_256(&(COMMITTEE_DRAW_TAG, seed, seat).encode());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(bytes)
}

/// Draws up to `seats` distinct candidates, each seat weighted by the remaining candidates'
/// weights; zero-weight candidates are never drawn. Returns the winners in seat order.
pub fn sample_without_replacement<A: Clone>(
    seed: &[u8; 32],
    candidates: &[(A, u128)],
    seats: u32,
) -> Vec<A> {
    let total_of = |pool: &[(A, u128)]| {
        pool.iter()
            .fold(0u128, |sum, (_, weight)| sum.saturating_add(*weight))
    };
    let mut pool: Vec<(A, u128)> = candidates
        .iter()
        .filter(|(_, weight)| *weight > 0)
        .cloned()
        .collect();
    let mut total = total_of(&pool);
    let mut winners = Vec::with_capacity(seats as usize);
    for seat in 0..seats {
        if pool.is_empty() || total == 0 {
            break;
        }
        let mut target = draw(seed, seat) % total;
        // The last candidate catches any slack a saturated total left.
        let mut index = pool.len() - 1;
        for (position, (_, weight)) in pool.iter().enumerate() {
            if target < *weight {
                index = position;
                break;
            }
            target -= *weight;
        }
        let (winner, _) = pool.remove(index);
        // Summed again rather than subtracted, so a saturated total stays exact afterwards.
        total = total_of(&pool);
        winners.push(winner);
    }
    winners
}

#[cfg(test)]
mod tests {
    // Indices name candidates across several arrays here.
    #![allow(clippy::needless_range_loop)]
    use super::*;

    const WEIGHTS: [u128; 6] = [1, 1, 2, 3, 5, 8];

    fn candidates() -> Vec<(usize, u128)> {
        WEIGHTS.iter().copied().enumerate().collect()
    }

    /// The exact probability that each candidate is among `k = 3` seats, by enumerating every
    /// ordered draw without replacement.
    fn exact_inclusion() -> [f64; 6] {
        let total: u128 = WEIGHTS.iter().sum();
        let mut inclusion = [0f64; 6];
        for a in 0..6 {
            for b in (0..6).filter(|&b| b != a) {
                for c in (0..6).filter(|&c| c != a && c != b) {
                    let p = WEIGHTS[a] as f64 / total as f64
                        * (WEIGHTS[b] as f64 / (total - WEIGHTS[a]) as f64)
                        * (WEIGHTS[c] as f64 / (total - WEIGHTS[a] - WEIGHTS[b]) as f64);
                    for member in [a, b, c] {
                        inclusion[member] += p;
                    }
                }
            }
        }
        inclusion
    }

    #[test]
    fn inclusion_and_first_seat_frequencies_match_the_exact_probabilities() {
        const DRAWS: u32 = 20_000;
        let total: u128 = WEIGHTS.iter().sum();
        let mut included = [0u32; 6];
        let mut first = [0u32; 6];
        for n in 0..DRAWS {
            let seed = blake2_256(&n.encode());
            let committee = sample_without_replacement(&seed, &candidates(), 3);
            assert_eq!(committee.len(), 3);
            let mut sorted = committee.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "no candidate sits twice");
            first[committee[0]] += 1;
            for member in committee {
                included[member] += 1;
            }
        }
        let exact = exact_inclusion();
        assert!((exact.iter().sum::<f64>() - 3.0).abs() < 1e-9);
        for i in 0..6 {
            let n = DRAWS as f64;
            let p = exact[i];
            let sigma = (p * (1.0 - p) / n).sqrt();
            let seen = included[i] as f64 / n;
            assert!(
                (seen - p).abs() < 4.0 * sigma,
                "candidate {i} (weight {}): included {seen:.4}, exact {p:.4}, sigma {sigma:.4}",
                WEIGHTS[i]
            );
            let p_first = WEIGHTS[i] as f64 / total as f64;
            let sigma_first = (p_first * (1.0 - p_first) / n).sqrt();
            let seen_first = first[i] as f64 / n;
            assert!(
                (seen_first - p_first).abs() < 4.0 * sigma_first,
                "candidate {i}: first seat {seen_first:.4}, exact {p_first:.4}"
            );
        }
    }

    #[test]
    fn fewer_candidates_than_seats_seats_them_all_and_zero_weights_never() {
        let candidates = vec![("a", 5u128), ("b", 0), ("c", 1)];
        let mut committee = sample_without_replacement(&[7; 32], &candidates, 5);
        committee.sort();
        assert_eq!(committee, vec!["a", "c"]);
        assert!(sample_without_replacement(&[7; 32], &[("x", 0u128)], 3).is_empty());
        assert!(sample_without_replacement::<u8>(&[7; 32], &[], 3).is_empty());
    }

    #[test]
    fn the_draw_depends_only_on_the_seed() {
        let a = sample_without_replacement(&[1; 32], &candidates(), 3);
        assert_eq!(a, sample_without_replacement(&[1; 32], &candidates(), 3));
        let differs =
            (2..20u8).any(|byte| sample_without_replacement(&[byte; 32], &candidates(), 3) != a);
        assert!(differs);
    }

    #[test]
    fn saturated_weights_still_draw_distinct_members() {
        let candidates = vec![(1, u128::MAX), (2, u128::MAX), (3, 1)];
        let committee = sample_without_replacement(&[9; 32], &candidates, 3);
        let mut sorted = committee.clone();
        sorted.sort();
        assert_eq!(sorted, vec![1, 2, 3]);
    }
}
