//! The firmware's TPM event log (TCG PC Client Platform Firmware Profile, crypto-agile format,
//! as Linux exposes it in `/sys/kernel/security/tpm0/binary_bios_measurements`): what UEFI
//! firmware measured into each PCR. [`parse`] reads it without trusting it (every length is
//! checked against the bytes there are); [`MeasuredBoot::check`] replays it against a quote's
//! PCR values and finds the boot image the firmware loaded, so a quote proves not merely
//! "the same PCRs as at enrolment" but "this approved image booted".
//!
//! The log is the agent's word; the quote is the TPM's. A log that replays to the quoted values
//! is what the TPM measured, event by event.
use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// `EV_NO_ACTION`: informational, never extended (the log's header, the startup locality).
pub const EV_NO_ACTION: u32 = 0x0000_0003;
/// `EV_EFI_BOOT_SERVICES_APPLICATION`: a UEFI application the firmware loaded, its digest
/// the PE image's Authenticode hash (PCR 4).
pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
/// The PCR of boot applications.
pub const BOOT_APPLICATIONS_PCR: u32 = 4;
/// `TPM_ALG_SHA256`.
const TPM_ALG_SHA256: u16 = 0x000B;
/// `TPM_ALG_SHA1`: the header event's own digest size.
const SHA1_BYTES: usize = 20;
/// More events than any firmware logs: a log claiming more is refused.
pub const MAX_EVENTS: usize = 8192;
/// Hash algorithms a log may declare.
const MAX_ALGORITHMS: u32 = 16;

/// Why a log was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventLogError {
    #[error("the event log ends inside {0}")]
    Truncated(&'static str),
    #[error(
        "the event log does not start with a Spec ID Event03 header (not the crypto-agile format)"
    )]
    NotCryptoAgile,
    #[error("the event log has no SHA-256 bank")]
    NoSha256,
    #[error("an event uses hash algorithm {0:#06x}, which the header does not declare")]
    UndeclaredAlgorithm(u16),
    #[error("the event log has more than {MAX_EVENTS} events")]
    TooManyEvents,
    #[error("PCR {pcr} replays to {replayed}, but the quote holds {quoted}: the log is not what the TPM measured")]
    Mismatch {
        pcr: u32,
        replayed: String,
        quoted: String,
    },
    #[error("PCR {BOOT_APPLICATIONS_PCR} is not quoted, or the log has no event for it")]
    NoBootApplications,
    #[error("the firmware loaded no approved boot image (boot applications {loaded:?})")]
    NoApprovedImage { loaded: Vec<String> },
}

/// One measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub pcr: u32,
    pub event_type: u32,
    /// The SHA-256 bank's digest (every extending event of a log with that bank has one).
    pub sha256: Option<[u8; 32]>,
    pub data: Vec<u8>,
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], EventLogError> {
        if self.bytes.len() < n {
            return Err(EventLogError::Truncated(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, EventLogError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, EventLogError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn sized(&mut self, what: &'static str) -> Result<&'a [u8], EventLogError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
}

/// The events of a crypto-agile log (the header event excluded).
pub fn parse(log: &[u8]) -> Result<Vec<Event>, EventLogError> {
    let mut r = Reader { bytes: log };
    // The header: a TCG_PCClientPCREvent (SHA-1 format) holding the Spec ID event.
    r.u32("the header")?;
    if r.u32("the header")? != EV_NO_ACTION {
        return Err(EventLogError::NotCryptoAgile);
    }
    r.take(SHA1_BYTES, "the header")?;
    let mut spec = Reader {
        bytes: r.sized("the header")?,
    };
    if spec.take(16, "the Spec ID event")? != b"Spec ID Event03\0" {
        return Err(EventLogError::NotCryptoAgile);
    }
    spec.take(4 + 4, "the Spec ID event")?; // platform class, version, errata, uintn size
    let algorithms = spec.u32("the Spec ID event")?;
    if algorithms > MAX_ALGORITHMS {
        return Err(EventLogError::Truncated("the Spec ID event"));
    }
    let mut sizes = BTreeMap::new();
    for _ in 0..algorithms {
        let id = spec.u16("the Spec ID event")?;
        sizes.insert(id, spec.u16("the Spec ID event")? as usize);
    }
    if sizes.get(&TPM_ALG_SHA256) != Some(&32) {
        return Err(EventLogError::NoSha256);
    }
    let mut events = Vec::new();
    while !r.bytes.is_empty() {
        if events.len() == MAX_EVENTS {
            return Err(EventLogError::TooManyEvents);
        }
        let pcr = r.u32("an event")?;
        let event_type = r.u32("an event")?;
        let count = r.u32("an event's digests")?;
        if count > MAX_ALGORITHMS {
            return Err(EventLogError::Truncated("an event's digests"));
        }
        let mut sha256 = None;
        for _ in 0..count {
            let id = r.u16("an event's digests")?;
            let size = *sizes
                .get(&id)
                .ok_or(EventLogError::UndeclaredAlgorithm(id))?;
            let digest = r.take(size, "an event's digests")?;
            if id == TPM_ALG_SHA256 {
                sha256 = digest.try_into().ok();
            }
        }
        let data = r.sized("an event's data")?.to_vec();
        events.push(Event {
            pcr,
            event_type,
            sha256,
            data,
        });
    }
    Ok(events)
}

/// The SHA-256 bank's PCR values the events extend to, for each PCR the log measures into.
pub fn replay(events: &[Event]) -> BTreeMap<u32, [u8; 32]> {
    let mut pcrs = BTreeMap::new();
    for event in events {
        if event.event_type == EV_NO_ACTION {
            // "StartupLocality\0" + the locality: PCR 0 starts at that value, not zero.
            if event.pcr == 0
                && event.data.len() == 17
                && event.data.starts_with(b"StartupLocality\0")
            {
                let mut start = [0u8; 32];
                start[31] = event.data[16];
                pcrs.entry(0).or_insert(start);
            }
            continue;
        }
        let Some(digest) = event.sha256 else { continue };
        let value = pcrs.entry(event.pcr).or_insert([0u8; 32]);
        let mut hasher = Sha256::new();
        hasher.update(*value);
        hasher.update(digest);
        *value = hasher.finalize().into();
    }
    pcrs
}

/// A log checked against a quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasuredBoot {
    /// The approved boot image the firmware loaded (its Authenticode SHA-256).
    pub image: [u8; 32],
    /// The boot applications loaded, in order (Authenticode SHA-256 each).
    pub applications: Vec<[u8; 32]>,
}

impl MeasuredBoot {
    /// Replays `log` against `quoted` (the quote's SHA-256 PCR values): every quoted PCR the log
    /// measures into must replay to its quoted value, PCR 4 among them, and one boot
    /// application there must be an approved image (`approved`: Authenticode SHA-256s).
    pub fn check(
        log: &[u8],
        quoted: &[(u8, [u8; 32])],
        approved: &[[u8; 32]],
    ) -> Result<Self, EventLogError> {
        let events = parse(log)?;
        let replayed = replay(&events);
        for (pcr, value) in quoted {
            let pcr = u32::from(*pcr);
            if let Some(replayed) = replayed.get(&pcr) {
                if replayed != value {
                    return Err(EventLogError::Mismatch {
                        pcr,
                        replayed: hex(replayed),
                        quoted: hex(value),
                    });
                }
            }
        }
        let quotes_boot_pcr = quoted
            .iter()
            .any(|(pcr, _)| u32::from(*pcr) == BOOT_APPLICATIONS_PCR);
        if !quotes_boot_pcr || !replayed.contains_key(&BOOT_APPLICATIONS_PCR) {
            return Err(EventLogError::NoBootApplications);
        }
        let applications: Vec<[u8; 32]> = events
            .iter()
            .filter(|e| {
                e.pcr == BOOT_APPLICATIONS_PCR && e.event_type == EV_EFI_BOOT_SERVICES_APPLICATION
            })
            .filter_map(|e| e.sha256)
            .collect();
        match applications.iter().find(|a| approved.contains(a)) {
            Some(image) => Ok(Self {
                image: *image,
                applications: applications.clone(),
            }),
            None => Err(EventLogError::NoApprovedImage {
                loaded: applications.iter().map(hex).collect(),
            }),
        }
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crypto-agile log: the header (SHA-1 and SHA-256 banks), then `events`.
    pub(crate) fn log(events: &[(u32, u32, [u8; 32], &[u8])]) -> Vec<u8> {
        let mut spec = b"Spec ID Event03\0".to_vec();
        spec.extend_from_slice(&0u32.to_le_bytes()); // platform class
        spec.extend_from_slice(&[0, 2, 0, 2]); // version 2.0, errata 0, uintn 2 (64-bit)
        spec.extend_from_slice(&2u32.to_le_bytes());
        spec.extend_from_slice(&0x0004u16.to_le_bytes());
        spec.extend_from_slice(&20u16.to_le_bytes());
        spec.extend_from_slice(&TPM_ALG_SHA256.to_le_bytes());
        spec.extend_from_slice(&32u16.to_le_bytes());
        spec.push(0); // no vendor information
        let mut out = Vec::new();
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
        out.extend_from_slice(&[0; 20]);
        out.extend_from_slice(&(spec.len() as u32).to_le_bytes());
        out.extend_from_slice(&spec);
        for (pcr, event_type, sha256, data) in events {
            out.extend_from_slice(&pcr.to_le_bytes());
            out.extend_from_slice(&event_type.to_le_bytes());
            out.extend_from_slice(&2u32.to_le_bytes());
            out.extend_from_slice(&0x0004u16.to_le_bytes());
            out.extend_from_slice(&[0xee; 20]);
            out.extend_from_slice(&TPM_ALG_SHA256.to_le_bytes());
            out.extend_from_slice(sha256);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    fn extend(pcr: [u8; 32], digest: [u8; 32]) -> [u8; 32] {
        Sha256::new()
            .chain_update(pcr)
            .chain_update(digest)
            .finalize()
            .into()
    }

    const IMAGE: [u8; 32] = [0x42; 32];
    const IPXE: [u8; 32] = [0x17; 32];

    fn boot_log() -> (Vec<u8>, [u8; 32], [u8; 32]) {
        let separator: [u8; 32] = Sha256::digest([0u8; 4]).into();
        let bytes = log(&[
            (0, EV_NO_ACTION, [0; 32], b"StartupLocality\0\x03"),
            (0, 0x8, [1; 32], b"firmware"),
            (
                4,
                0x8000_0007,
                [2; 32],
                b"Calling EFI Application from Boot Option",
            ),
            (4, 0x4, separator, &[0; 4]),
            (4, EV_EFI_BOOT_SERVICES_APPLICATION, IPXE, b"ipxe.efi"),
            (4, EV_EFI_BOOT_SERVICES_APPLICATION, IMAGE, b"boot.efi"),
        ]);
        let mut pcr0 = [0u8; 32];
        pcr0[31] = 3;
        let pcr0 = extend(pcr0, [1; 32]);
        let pcr4 = [[2; 32], separator, IPXE, IMAGE]
            .into_iter()
            .fold([0u8; 32], extend);
        (bytes, pcr0, pcr4)
    }

    #[test]
    fn a_log_replays_to_its_pcrs_and_names_the_image_it_booted() {
        let (bytes, pcr0, pcr4) = boot_log();
        let events = parse(&bytes).expect("parses");
        assert_eq!(events.len(), 6);
        assert_eq!(replay(&events), BTreeMap::from([(0, pcr0), (4, pcr4)]));
        let checked = MeasuredBoot::check(&bytes, &[(0, pcr0), (4, pcr4), (16, [0; 32])], &[IMAGE])
            .expect("checks");
        assert_eq!(checked.image, IMAGE);
        assert_eq!(checked.applications, vec![IPXE, IMAGE]);
    }

    #[test]
    fn a_log_that_is_not_what_the_tpm_measured_or_booted_another_image_is_refused() {
        let (bytes, pcr0, pcr4) = boot_log();
        let mut other = pcr4;
        other[0] ^= 1;
        assert!(matches!(
            MeasuredBoot::check(&bytes, &[(0, pcr0), (4, other)], &[IMAGE]),
            Err(EventLogError::Mismatch { pcr: 4, .. })
        ));
        assert!(matches!(
            MeasuredBoot::check(&bytes, &[(0, pcr0), (4, pcr4)], &[[9; 32]]),
            Err(EventLogError::NoApprovedImage { .. })
        ));
        assert_eq!(
            MeasuredBoot::check(&bytes, &[(0, pcr0)], &[IMAGE]),
            Err(EventLogError::NoBootApplications)
        );
    }

    #[test]
    fn malformed_logs_are_errors_at_every_length() {
        let (bytes, _, _) = boot_log();
        for n in 0..bytes.len() {
            // Any cut inside the header or an event is an error, never a panic; a cut between
            // events is a shorter log.
            let _ = parse(&bytes[..n]);
        }
        assert_eq!(
            parse(&bytes[..10]),
            Err(EventLogError::Truncated("the header"))
        );
        assert_eq!(
            parse(&bytes[..bytes.len() - 1]),
            Err(EventLogError::Truncated("an event's data"))
        );
        let mut sha1_only = bytes.clone();
        // The header's second algorithm becomes SHA-384 (0x000C, 48 bytes).
        let at = 32 + 16 + 8 + 4 + 4;
        sha1_only[at..at + 4].copy_from_slice(&[0x0C, 0, 48, 0]);
        assert_eq!(parse(&sha1_only), Err(EventLogError::NoSha256));
        let mut header = bytes;
        header[4] = 1;
        assert_eq!(parse(&header), Err(EventLogError::NotCryptoAgile));
    }
}
