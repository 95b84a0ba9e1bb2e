//! The capsule header: an age v1 header (C2SP age spec), read within fixed limits and written
//! back with a new MAC when a capsule is re-wrapped.
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <ephemeral share>
//! <wrapped file key, base64>
//! -> capsule-bound-X25519 <ephemeral share>
//! <wrapped file key, base64>
//! --- <HMAC-SHA256 under HKDF(file key, "header"), base64>
//! ```
//!
//! Stanzas are parsed and written by `age-core`'s own parser and writer; this module adds the
//! limits ([`MAX_HEADER_BYTES`], [`MAX_RECIPIENTS`]), the version check and the MAC.
use std::io::{self, Read};

use age_core::{
    format::{FileKey, Stanza},
    primitives::hkdf,
    secrecy::ExposeSecret,
};
use base64::{prelude::BASE64_STANDARD_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::CapsuleError;

/// The first line of every capsule: the age v1 version line.
pub const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";
/// The most header bytes a capsule may have (about 140 X25519 stanzas).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most recipient stanzas a capsule may list.
pub const MAX_RECIPIENTS: usize = 64;

const MAC_PREFIX: &[u8] = b"---";
const ENCODED_MAC_LEN: usize = 43;

/// A parsed header: its stanzas, its MAC and the exact bytes the MAC covers.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    stanzas: Vec<Stanza>,
    mac: [u8; 32],
    /// The header's bytes up to and including `---`.
    signed: Vec<u8>,
}

impl Header {
    /// The recipient stanzas, in header order.
    pub fn stanzas(&self) -> &[Stanza] {
        &self.stanzas
    }

    /// Copies of the recipient stanzas (`Stanza` is not `Clone`), to build a re-wrapped header.
    pub fn copy_stanzas(&self) -> Vec<Stanza> {
        self.stanzas
            .iter()
            .map(|stanza| Stanza {
                tag: stanza.tag.clone(),
                args: stanza.args.clone(),
                body: stanza.body.clone(),
            })
            .collect()
    }

    /// Parses a whole header (`bytes` is exactly the header, ending with the MAC line).
    pub fn parse(bytes: &[u8]) -> Result<Self, CapsuleError> {
        if bytes.len() > MAX_HEADER_BYTES {
            return Err(CapsuleError::HeaderTooLarge {
                max: MAX_HEADER_BYTES,
            });
        }
        let mut rest = check_version(bytes)?;
        let mut stanzas = Vec::new();
        loop {
            if rest.starts_with(MAC_PREFIX) {
                break;
            }
            if stanzas.len() == MAX_RECIPIENTS {
                return Err(CapsuleError::TooManyRecipients {
                    max: MAX_RECIPIENTS,
                });
            }
            match age_core::format::read::age_stanza(rest) {
                Ok((remaining, stanza)) => {
                    stanzas.push(Stanza::from(stanza));
                    rest = remaining;
                }
                Err(nom::Err::Incomplete(_)) => return Err(CapsuleError::TruncatedHeader),
                Err(_) => return Err(CapsuleError::MalformedHeader),
            }
        }
        if stanzas.is_empty() {
            return Err(CapsuleError::MalformedHeader);
        }
        let signed_len = bytes.len() - rest.len() + MAC_PREFIX.len();
        let mac_line = &rest[MAC_PREFIX.len()..];
        let encoded = match mac_line {
            [b' ', encoded @ .., b'\n'] if encoded.len() == ENCODED_MAC_LEN => encoded,
            _ if mac_line.len() < ENCODED_MAC_LEN + 2 => return Err(CapsuleError::TruncatedHeader),
            _ => return Err(CapsuleError::MalformedHeader),
        };
        let decoded = BASE64_STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| CapsuleError::MalformedHeader)?;
        let mac = decoded
            .try_into()
            .map_err(|_| CapsuleError::MalformedHeader)?;
        Ok(Self {
            stanzas,
            mac,
            signed: bytes[..signed_len].to_vec(),
        })
    }

    /// Builds the header of `stanzas` for `file_key`: its bytes, with the MAC computed.
    pub fn build(stanzas: Vec<Stanza>, file_key: &FileKey) -> Result<Self, CapsuleError> {
        if stanzas.is_empty() {
            return Err(CapsuleError::NoRecipients);
        }
        if stanzas.len() > MAX_RECIPIENTS {
            return Err(CapsuleError::TooManyRecipients {
                max: MAX_RECIPIENTS,
            });
        }
        let mut signed = VERSION_LINE.to_vec();
        for stanza in &stanzas {
            let args: Vec<&str> = stanza.args.iter().map(String::as_str).collect();
            let write = age_core::format::write::age_stanza(&stanza.tag, &args, &stanza.body);
            signed = cookie_factory::gen_simple(write, signed)
                .map_err(|_| CapsuleError::MalformedHeader)?;
        }
        signed.extend_from_slice(MAC_PREFIX);
        let header = Self {
            mac: header_mac(file_key, &signed),
            stanzas,
            signed,
        };
        if header.to_bytes().len() > MAX_HEADER_BYTES {
            return Err(CapsuleError::HeaderTooLarge {
                max: MAX_HEADER_BYTES,
            });
        }
        Ok(header)
    }

    /// Checks the MAC under `file_key`: the header is exactly what the sealer wrote.
    pub fn verify_mac(&self, file_key: &FileKey) -> Result<(), CapsuleError> {
        let mut mac = mac_key(file_key);
        mac.update(&self.signed);
        mac.verify_slice(&self.mac)
            .map_err(|_| CapsuleError::HeaderMac)
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.signed.clone();
        bytes.push(b' ');
        bytes.extend_from_slice(BASE64_STANDARD_NO_PAD.encode(self.mac).as_bytes());
        bytes.push(b'\n');
        bytes
    }
}

fn mac_key(file_key: &FileKey) -> Hmac<Sha256> {
    let key = hkdf(&[], b"header", file_key.expose_secret());
    Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length")
}

fn header_mac(file_key: &FileKey, signed: &[u8]) -> [u8; 32] {
    let mut mac = mac_key(file_key);
    mac.update(signed);
    mac.finalize().into_bytes().into()
}

/// Strips the version line, telling a capsule of another version from something else.
fn check_version(bytes: &[u8]) -> Result<&[u8], CapsuleError> {
    if let Some(rest) = bytes.strip_prefix(VERSION_LINE) {
        return Ok(rest);
    }
    if VERSION_LINE.starts_with(bytes) {
        return Err(CapsuleError::TruncatedHeader);
    }
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    match line.strip_prefix(b"age-encryption.org/") {
        Some(version) => Err(CapsuleError::UnknownVersion(
            String::from_utf8_lossy(&version[..version.len().min(32)]).into_owned(),
        )),
        None => Err(CapsuleError::NotACapsule),
    }
}

/// Reads a header from the start of `input`: returns its bytes and the bytes read past it (the
/// start of the payload). Reads at most [`MAX_HEADER_BYTES`] plus one buffer.
pub fn read_header(mut input: impl Read) -> Result<(Vec<u8>, Vec<u8>), CapsuleError> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut scanned = 0;
    loop {
        // The MAC line is the first line starting with "---" (stanza lines start with "-> " or
        // are base64, which has no '-').
        if let Some(end) = mac_line_end(&buffer, &mut scanned) {
            let rest = buffer.split_off(end);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEADER_BYTES {
            check_version(&buffer)?;
            return Err(CapsuleError::HeaderTooLarge {
                max: MAX_HEADER_BYTES,
            });
        }
        let read = match input.read(&mut chunk) {
            Ok(0) => {
                check_version(&buffer)?;
                return Err(CapsuleError::TruncatedHeader);
            }
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(CapsuleError::Io {
                    what: "reading the capsule header",
                    source,
                })
            }
        };
        buffer.extend_from_slice(&chunk[..read]);
        if buffer.len() >= VERSION_LINE.len() || buffer.contains(&b'\n') {
            check_version(&buffer)?;
        }
    }
}

/// The end (past its newline) of the MAC line, if `buffer` holds it whole. `scanned` keeps the
/// start of the first line not yet known to be another line.
fn mac_line_end(buffer: &[u8], scanned: &mut usize) -> Option<usize> {
    loop {
        let line_end = buffer[*scanned..].iter().position(|b| *b == b'\n')? + *scanned;
        if buffer[*scanned..].starts_with(MAC_PREFIX) {
            return Some(line_end + 1);
        }
        *scanned = line_end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> FileKey {
        FileKey::new(Box::new([byte; 16]))
    }

    fn stanza(tag: &str, body: &[u8]) -> Stanza {
        Stanza {
            tag: tag.into(),
            args: vec!["AAAA".into()],
            body: body.to_vec(),
        }
    }

    #[test]
    fn a_built_header_parses_back_and_its_mac_verifies() {
        let header = Header::build(vec![stanza("X25519", &[1; 32]), stanza("t", &[])], &key(1))
            .expect("builds");
        let bytes = header.to_bytes();
        let parsed = Header::parse(&bytes).expect("parses");
        assert_eq!(parsed, header);
        parsed.verify_mac(&key(1)).expect("same key");
        assert!(matches!(
            parsed.verify_mac(&key(2)),
            Err(CapsuleError::HeaderMac)
        ));
    }

    #[test]
    fn read_header_stops_at_the_mac_line() {
        let header = Header::build(vec![stanza("X25519", &[7; 32])], &key(3)).unwrap();
        let mut file = header.to_bytes();
        file.extend_from_slice(b"payload bytes");
        let (read, rest) = read_header(&file[..]).expect("reads");
        assert_eq!(read, header.to_bytes());
        assert_eq!(rest, b"payload bytes");
    }

    #[test]
    fn limits_and_versions_are_typed_errors() {
        let many = (0..=MAX_RECIPIENTS)
            .map(|_| stanza("X25519", &[1; 32]))
            .collect();
        assert!(matches!(
            Header::build(many, &key(1)),
            Err(CapsuleError::TooManyRecipients { .. })
        ));
        assert!(matches!(
            Header::parse(b"age-encryption.org/v2\n-> X\n\n--- x\n"),
            Err(CapsuleError::UnknownVersion(v)) if v == "v2"
        ));
        assert!(matches!(
            Header::parse(b"hello"),
            Err(CapsuleError::NotACapsule)
        ));
        let mut huge = VERSION_LINE.to_vec();
        huge.resize(MAX_HEADER_BYTES + 10, b'A');
        assert!(matches!(
            read_header(&huge[..]),
            Err(CapsuleError::HeaderTooLarge { .. })
        ));
    }
}
