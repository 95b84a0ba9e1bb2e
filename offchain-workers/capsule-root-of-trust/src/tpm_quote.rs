//! Checking a TPM 2.0 quote without a TPM: what a gateway (or a verifier on another gateway)
//! runs on an HPC's [`TpmQuote`], in pure Rust.
//!
//! In order, as Keylime does: the marshalled `TPMS_ATTEST` is a TPM-generated quote
//! (`TPM_GENERATED_VALUE`, `TPM_ST_ATTEST_QUOTE`); its qualifying data is the expected one (the
//! report's [`capsule_primitives::report::HpcReport::quoted_digest`], which holds the
//! challenge's nonce); it quotes exactly the pinned PCR selection of the SHA-256 bank (a quote
//! of other PCRs must not pass, GHSA-8rjm-5f5f-h4q6); the SHA-256 of the reported PCR values is
//! the attested PCR digest; the values are the expected ones; the attestation key signed it
//! (ECDSA P-256 over SHA-256 of the structure); and its clock did not go back (reset count
//! never decreases; within one reset, the clock only grows), which catches a replayed quote and
//! a reboot the gateway did not see.
use capsule_primitives::report::TpmQuote;
use p256::ecdsa::{signature::Verifier, Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// `TPM_GENERATED_VALUE`.
const GENERATED: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`.
const ATTEST_QUOTE: u16 = 0x8018;
/// `TPM_ALG_SHA256`.
const SHA256: u16 = 0x000b;

/// The TPM's clock at the quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockInfo {
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
}

impl ClockInfo {
    /// Whether `self` can follow `earlier` within one boot: the same reset and restart
    /// counts (any reset or restart between two quotes of one session is a reboot the gateway
    /// did not see), and a clock that moved forward (the same quote again did not).
    pub fn follows(&self, earlier: &ClockInfo) -> bool {
        self.reset_count == earlier.reset_count
            && self.restart_count == earlier.restart_count
            && self.clock > earlier.clock
    }
}

/// A parsed quote structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attested {
    pub qualifying_data: Vec<u8>,
    pub clock: ClockInfo,
    /// `(hash algorithm, selection bitmap)` per bank.
    pub selection: Vec<(u16, Vec<u8>)>,
    pub pcr_digest: Vec<u8>,
}

/// Why a quote fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("the quote structure is malformed")]
    Malformed,
    #[error("not a TPM-generated quote")]
    NotAQuote,
    #[error("the quote's qualifying data is not this challenge's")]
    WrongNonce,
    #[error("the quote covers another PCR selection than the pinned one")]
    WrongSelection,
    #[error("the reported PCR values do not hash to the attested digest")]
    PcrDigest,
    #[error("a PCR value differs from the expected one")]
    PcrValues,
    #[error("the attestation key did not sign this quote")]
    Signature,
    #[error("the TPM's clock went back: a replay or an unseen reset")]
    ClockWentBack,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], QuoteError> {
        if self.0.len() < n {
            return Err(QuoteError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, QuoteError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, QuoteError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, QuoteError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, QuoteError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }
    fn sized(&mut self) -> Result<&'a [u8], QuoteError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// Parses a marshalled `TPMS_ATTEST` of a quote.
pub fn parse_attest(bytes: &[u8]) -> Result<Attested, QuoteError> {
    let mut r = Reader(bytes);
    if r.u32()? != GENERATED || r.u16()? != ATTEST_QUOTE {
        return Err(QuoteError::NotAQuote);
    }
    let _signer = r.sized()?;
    let qualifying_data = r.sized()?.to_vec();
    let clock = ClockInfo {
        clock: r.u64()?,
        reset_count: r.u32()?,
        restart_count: r.u32()?,
        safe: r.u8()? != 0,
    };
    let _firmware = r.u64()?;
    let banks = r.u32()?;
    if banks > 16 {
        return Err(QuoteError::Malformed);
    }
    let mut selection = Vec::new();
    for _ in 0..banks {
        let hash = r.u16()?;
        let size = usize::from(r.u8()?);
        selection.push((hash, r.take(size)?.to_vec()));
    }
    let pcr_digest = r.sized()?.to_vec();
    if !r.0.is_empty() {
        return Err(QuoteError::Malformed);
    }
    Ok(Attested {
        qualifying_data,
        clock,
        selection,
        pcr_digest,
    })
}

/// The SHA-256 over the reported PCR values in order: what the TPM attests as the PCR digest.
pub fn pcr_digest(quote: &TpmQuote) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (_, value) in quote.pcrs.iter() {
        hasher.update(value);
    }
    hasher.finalize().into()
}

/// The selection bitmap of PCRs `indices` (3 bytes, as TPMs select 24 PCRs).
pub fn selection_bitmap(indices: &[u8]) -> Vec<u8> {
    let mut bitmap = vec![0u8; 3];
    for &i in indices {
        if let Some(byte) = bitmap.get_mut(usize::from(i / 8)) {
            *byte |= 1 << (i % 8);
        }
    }
    bitmap
}

/// Checks `quote` (see the module docs). `expected` pins the selection and the values, in
/// increasing PCR order; `previous` is the clock of this boot's last accepted quote. Returns the
/// quote's clock, for the next check.
pub fn verify_quote(
    quote: &TpmQuote,
    attestation_key: &VerifyingKey,
    qualifying_data: &[u8; 32],
    expected: &[(u8, [u8; 32])],
    previous: Option<&ClockInfo>,
) -> Result<ClockInfo, QuoteError> {
    let attested = parse_attest(&quote.attest)?;
    if attested.qualifying_data != qualifying_data {
        return Err(QuoteError::WrongNonce);
    }
    let indices: Vec<u8> = expected.iter().map(|(i, _)| *i).collect();
    if attested.selection != [(SHA256, selection_bitmap(&indices))] {
        return Err(QuoteError::WrongSelection);
    }
    let reported: Vec<u8> = quote.pcrs.iter().map(|(i, _)| *i).collect();
    if reported != indices {
        return Err(QuoteError::WrongSelection);
    }
    if pcr_digest(quote) != attested.pcr_digest.as_slice() {
        return Err(QuoteError::PcrDigest);
    }
    let signature = Signature::from_slice(&quote.signature).map_err(|_| QuoteError::Signature)?;
    attestation_key
        .verify(&quote.attest, &signature)
        .map_err(|_| QuoteError::Signature)?;
    if quote
        .pcrs
        .iter()
        .zip(expected)
        .any(|((_, got), (_, want))| got != want)
    {
        return Err(QuoteError::PcrValues);
    }
    if previous.is_some_and(|earlier| !attested.clock.follows(earlier)) {
        return Err(QuoteError::ClockWentBack);
    }
    Ok(attested.clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_bitmaps_follow_the_tpm_layout() {
        assert_eq!(
            selection_bitmap(&[0, 1, 2, 3, 7, 16]),
            vec![0x8f, 0x00, 0x01]
        );
    }

    #[test]
    fn clocks_may_only_move_forward() {
        let at = |reset_count, clock| ClockInfo {
            clock,
            reset_count,
            restart_count: 0,
            safe: true,
        };
        assert!(at(1, 200).follows(&at(1, 100)));
        assert!(
            !at(2, 5).follows(&at(1, 100)),
            "a reset within the boot's session"
        );
        assert!(!at(1, 100).follows(&at(1, 100)), "the same quote again");
        assert!(!at(0, 500).follows(&at(1, 100)));
    }

    #[test]
    fn truncated_or_foreign_structures_are_refused() {
        assert_eq!(parse_attest(&[0xff, 0x54]), Err(QuoteError::Malformed));
        assert_eq!(
            parse_attest(&[0, 0, 0, 0, 0x80, 0x18]),
            Err(QuoteError::NotAQuote)
        );
    }
}
