//! The payload: age's STREAM construction, with `ring`'s ChaCha20-Poly1305 (BoringSSL's
//! assembly, about twice the RustCrypto implementation's speed on our machines).
//!
//! ```text
//! payload = nonce (16 random bytes) ‖ chunk_0 ‖ … ‖ chunk_n
//! key     = HKDF-SHA256(ikm = file key, salt = nonce, info = "payload")
//! chunk_i = ChaCha20-Poly1305(key, counter_i ‖ last_i, 64 KiB of plaintext (the last may be
//!           shorter, and is empty only for an empty plaintext))
//! counter_i: 11 bytes big-endian; last_i: 0x01 on the last chunk, else 0x00
//! ```
//!
//! The decryptor writes a chunk only after it verified, and knows the last chunk by its flag,
//! so a payload cut at a chunk boundary is [`CapsuleError::TruncatedPayload`], not a shorter
//! plaintext.
use std::io::{self, Read, Write};

use age_core::{format::FileKey, primitives::hkdf, secrecy::ExposeSecret};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

use crate::CapsuleError;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Poly1305 tag bytes per chunk.
pub const TAG: usize = 16;
/// The payload nonce's length.
pub const NONCE: usize = 16;
const SEALED_CHUNK: usize = CHUNK + TAG;

fn payload_key(file_key: &FileKey, nonce: &[u8; NONCE]) -> LessSafeKey {
    let key = hkdf(nonce, b"payload", file_key.expose_secret());
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).expect("a 32-byte key"))
}

fn chunk_nonce(counter: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn read_full(
    input: &mut impl Read,
    buffer: &mut [u8],
    what: &'static str,
) -> Result<usize, CapsuleError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(CapsuleError::Io { what, source }),
        }
    }
    Ok(filled)
}

/// Encrypts `plaintext` as a payload under `file_key` with `nonce`; returns the plaintext
/// length. Two chunk buffers: the next chunk is read before the current one is sealed, to know
/// whether the current one is the last.
pub fn encrypt(
    file_key: &FileKey,
    nonce: &[u8; NONCE],
    mut plaintext: impl Read,
    output: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, CapsuleError> {
    let key = payload_key(file_key, nonce);
    let write = |output: &mut dyn Write, bytes: &[u8]| {
        output.write_all(bytes).map_err(|source| CapsuleError::Io {
            what: "writing the capsule",
            source,
        })
    };
    write(output, nonce)?;
    // Room for the tag after each chunk, so a sealed chunk is written in one call.
    let mut current = vec![0u8; SEALED_CHUNK];
    let mut next = vec![0u8; SEALED_CHUNK];
    let mut current_len = read_full(
        &mut plaintext,
        &mut current[..CHUNK],
        "reading the plaintext",
    )?;
    let mut total = 0u64;
    let mut counter = 0u64;
    loop {
        let next_len = if current_len == CHUNK {
            read_full(&mut plaintext, &mut next[..CHUNK], "reading the plaintext")?
        } else {
            0
        };
        let last = next_len == 0;
        let tag = key
            .seal_in_place_separate_tag(
                chunk_nonce(counter, last),
                Aad::empty(),
                &mut current[..current_len],
            )
            .map_err(|_| CapsuleError::Seal("the chunk counter overflowed".into()))?;
        current[current_len..current_len + TAG].copy_from_slice(tag.as_ref());
        write(output, &current[..current_len + TAG])?;
        total += current_len as u64;
        progress(total);
        if last {
            return Ok(total);
        }
        counter += 1;
        core::mem::swap(&mut current, &mut next);
        current_len = next_len;
    }
}

/// Decrypts a payload under `file_key` to `output`, each chunk verified before it is written;
/// returns the plaintext length.
pub fn decrypt(
    file_key: &FileKey,
    mut payload: impl Read,
    output: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, CapsuleError> {
    const WHAT: &str = "reading the capsule";
    let mut nonce = [0u8; NONCE];
    if read_full(&mut payload, &mut nonce, WHAT)? < NONCE {
        return Err(CapsuleError::TruncatedPayload);
    }
    let key = payload_key(file_key, &nonce);
    let mut current = vec![0u8; SEALED_CHUNK];
    let mut next = vec![0u8; SEALED_CHUNK];
    let mut current_len = read_full(&mut payload, &mut current, WHAT)?;
    let mut total = 0u64;
    let mut counter = 0u64;
    loop {
        if current_len < TAG {
            // Not even a tag: the payload was cut (or, with nothing at all, never finished).
            return Err(CapsuleError::TruncatedPayload);
        }
        let next_len = if current_len == SEALED_CHUNK {
            read_full(&mut payload, &mut next, WHAT)?
        } else {
            0
        };
        let last = next_len == 0;
        // A full chunk at the end may be a cut at a chunk boundary: keep a copy to tell (the
        // buffer is unspecified after a failed open).
        let full_at_end = (last && current_len == SEALED_CHUNK).then(|| current.clone());
        let chunk = &mut current[..current_len];
        let opened = match key.open_in_place(chunk_nonce(counter, last), Aad::empty(), chunk) {
            Ok(plain) => plain.len(),
            Err(_) => {
                let cut = full_at_end.is_some_and(|mut copy| {
                    key.open_in_place(chunk_nonce(counter, false), Aad::empty(), &mut copy)
                        .is_ok()
                });
                return Err(if cut {
                    CapsuleError::TruncatedPayload
                } else {
                    CapsuleError::CorruptPayload
                });
            }
        };
        if last && opened == 0 && counter > 0 {
            // Only an empty plaintext ends with an empty chunk.
            return Err(CapsuleError::CorruptPayload);
        }
        output
            .write_all(&current[..opened])
            .map_err(|source| CapsuleError::Io {
                what: "writing the plaintext",
                source,
            })?;
        total += opened as u64;
        progress(total);
        if last {
            return Ok(total);
        }
        counter += 1;
        core::mem::swap(&mut current, &mut next);
        current_len = next_len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FileKey {
        FileKey::new(Box::new([3; 16]))
    }

    fn round_trip(len: usize) -> Vec<u8> {
        let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut sealed = Vec::new();
        let written = encrypt(&key(), &[9; NONCE], &plain[..], &mut sealed, &mut |_| {}).unwrap();
        assert_eq!(written, len as u64);
        let chunks = len.div_ceil(CHUNK).max(1);
        assert_eq!(sealed.len(), NONCE + len + chunks * TAG, "{len} bytes");
        let mut opened = Vec::new();
        decrypt(&key(), &sealed[..], &mut opened, &mut |_| {}).unwrap();
        assert_eq!(opened, plain);
        sealed
    }

    #[test]
    fn payloads_round_trip_at_every_chunk_edge() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5] {
            round_trip(len);
        }
    }

    #[test]
    fn a_full_last_chunk_cut_off_is_a_truncation() {
        let sealed = round_trip(2 * CHUNK);
        let cut = &sealed[..NONCE + SEALED_CHUNK];
        assert!(matches!(
            decrypt(&key(), cut, &mut Vec::new(), &mut |_| {}),
            Err(CapsuleError::TruncatedPayload)
        ));
    }
}
