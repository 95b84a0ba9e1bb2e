//! # Capsule format
//!
//! A digital capsule is data sealed so that only its recipients can read it: an age v1 file
//! (the C2SP age format) whose header wraps a random 16-byte file key to each recipient's X25519
//! key, followed by the payload encrypted in 64 KiB ChaCha20-Poly1305 chunks (age's STREAM).
//! An unbound capsule *is* an age file: Debian's `age` tool opens it, and we open its files.
//! The payload is sealed and opened by our own STREAM implementation over `ring`'s
//! ChaCha20-Poly1305 ([`stream`]), about twice as fast as the `age` crate's.
//!
//! What this crate adds to the `age` crate:
//! - **Bound recipients** ([`Binding`], [`bound`]): a stanza whose key derivation includes a
//!   task or function digest, so an attested runtime that derives the digest from the task it
//!   runs cannot use a key released for one task under another (the digest is public: binding
//!   is not DRM, see docs/capsule-format.md).
//! - **Re-wrapping** ([`rewrap_header`], [`rewrap`]): a new recipient needs only a new header
//!   (same file key, new stanza, new MAC); the payload stays byte for byte the same, so the
//!   capsule's content id, which names the payload only, never changes. This is how a gateway
//!   releases an input's key to an attested executor's session key ([`release_to`]).
//! - **Limits and typed errors** ([`header`]): the header is read within [`MAX_HEADER_BYTES`]
//!   and [`MAX_RECIPIENTS`]; every malformed, truncated or tampered capsule is a
//!   [`CapsuleError`], never a panic.
//! - **No partial plaintext** ([`open_to_file`]): plaintext goes to a temporary file that is
//!   renamed into place only after the last chunk verified.
//!
//! The format, with test vectors, is in `docs/capsule-format.md`.
use std::{
    io::{self, Cursor, Read, Write},
    path::Path,
};

pub mod bound;
pub mod header;
pub mod keys;
pub mod stream;

pub use bound::Binding;
pub use header::{Header, MAX_HEADER_BYTES, MAX_RECIPIENTS};
pub use keys::{PublicKey, SecretKey};

use age_core::format::FileKey;
use bound::{BoundIdentity, BoundRecipient, BOUND_TAG};
use rand::{rngs::OsRng, RngCore};

/// The tag of age's plain X25519 stanza.
const X25519_TAG: &str = "X25519";

/// What can go wrong with a capsule. Every variant says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum CapsuleError {
    #[error("not a capsule: it does not start with the age v1 version line (is it the plaintext, or a store block?)")]
    NotACapsule,
    #[error("capsule format version {0:?} is unknown; this tool reads age-encryption.org/v1 (upgrade it, or ask the sealer for a v1 capsule)")]
    UnknownVersion(String),
    #[error("the capsule header exceeds {max} bytes; it was not written by a capsule or age tool, or was tampered with")]
    HeaderTooLarge { max: usize },
    #[error(
        "the capsule lists more than {max} recipients; seal large audiences to a group key instead"
    )]
    TooManyRecipients { max: usize },
    #[error("the capsule header is malformed; the file is damaged or not a capsule")]
    MalformedHeader,
    #[error("the capsule ends inside its header; the file is truncated, fetch it again")]
    TruncatedHeader,
    #[error("the capsule header's MAC does not verify: the header was changed after sealing")]
    HeaderMac,
    #[error("a capsule needs at least one recipient")]
    NoRecipients,
    #[error("none of the given keys opens this capsule; check the identity file (and the binding digest, if the sealer bound it)")]
    NoMatchingIdentity,
    #[error("this capsule is sealed only to bound recipients; pass the task or function digest it is bound to")]
    BindingRequired,
    #[error("a payload chunk does not verify: the capsule was changed or damaged after sealing; nothing was written")]
    CorruptPayload,
    #[error("the capsule's payload ends before its last chunk: it is truncated; fetch it again, nothing was written")]
    TruncatedPayload,
    #[error("invalid key: expected {0}")]
    InvalidKey(&'static str),
    #[error("sealing failed: {0}")]
    Seal(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> CapsuleError {
    move |source| CapsuleError::Io { what, source }
}

/// Who a capsule is sealed to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Recipient {
    pub key: PublicKey,
    /// If set, the stanza is bound to this digest (and plain age tools cannot use it).
    pub binding: Option<Binding>,
}

impl Recipient {
    pub fn plain(key: PublicKey) -> Self {
        Self { key, binding: None }
    }

    pub fn bound(key: PublicKey, binding: Binding) -> Self {
        Self {
            key,
            binding: Some(binding),
        }
    }

    /// The `age` crate's recipient for this one, refusing low-order keys (age's own X25519
    /// recipient would panic on them).
    fn to_age(self) -> Result<Box<dyn age::Recipient>, CapsuleError> {
        self.key.check()?;
        Ok(self.to_age_unchecked())
    }

    fn to_age_unchecked(self) -> Box<dyn age::Recipient> {
        match self.binding {
            None => Box::new(self.key.age_recipient()),
            Some(binding) => Box::new(BoundRecipient {
                key: self.key,
                binding,
            }),
        }
    }
}

/// The identities that open capsules: secret keys, and the binding digest a bound capsule
/// needs (if any).
#[derive(Clone, Copy, Debug)]
pub struct Opener<'a> {
    pub keys: &'a [SecretKey],
    pub binding: Option<Binding>,
}

impl<'a> Opener<'a> {
    pub fn new(keys: &'a [SecretKey]) -> Self {
        Self {
            keys,
            binding: None,
        }
    }

    pub fn with_binding(mut self, binding: Binding) -> Self {
        self.binding = Some(binding);
        self
    }

    fn identities(&self) -> Vec<Box<dyn age::Identity + 'a>> {
        let mut identities: Vec<Box<dyn age::Identity + 'a>> = Vec::new();
        for key in self.keys {
            identities.push(Box::new(key.age_identity()));
            if let Some(binding) = self.binding {
                identities.push(Box::new(BoundIdentity { key, binding }));
            }
        }
        identities
    }

    /// Unwraps the file key from `header` and checks the header's MAC with it.
    fn file_key(&self, header: &Header) -> Result<FileKey, CapsuleError> {
        let file_key = self
            .identities()
            .iter()
            .find_map(|identity| identity.unwrap_stanzas(header.stanzas()))
            .ok_or_else(|| self.no_match(header))?
            .map_err(|_| CapsuleError::MalformedHeader)?;
        header.verify_mac(&file_key)?;
        Ok(file_key)
    }

    fn no_match(&self, header: &Header) -> CapsuleError {
        // age adds a random "grease" stanza to every header, so look for X25519 ones.
        let stanzas = header.stanzas();
        let bound_only = stanzas.iter().any(|s| s.tag == BOUND_TAG)
            && !stanzas.iter().any(|s| s.tag == X25519_TAG);
        if bound_only && self.binding.is_none() {
            CapsuleError::BindingRequired
        } else {
            CapsuleError::NoMatchingIdentity
        }
    }
}

/// Seals `plaintext` to `recipients`, writing the capsule to `output`: a fresh file key, one
/// stanza per recipient, the header MAC, then the payload ([`stream`]). Streams in constant
/// memory; `progress` is told the plaintext bytes sealed so far. Returns the plaintext length.
pub fn seal(
    plaintext: impl Read,
    mut output: impl Write,
    recipients: &[Recipient],
    progress: &mut dyn FnMut(u64),
) -> Result<u64, CapsuleError> {
    if recipients.is_empty() {
        return Err(CapsuleError::NoRecipients);
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(CapsuleError::TooManyRecipients {
            max: MAX_RECIPIENTS,
        });
    }
    let file_key = FileKey::init_with_mut(|key| OsRng.fill_bytes(key));
    let mut stanzas = Vec::new();
    for recipient in recipients {
        let (wrapped, _labels) = recipient
            .to_age()?
            .wrap_file_key(&file_key)
            .map_err(|e| CapsuleError::Seal(e.to_string()))?;
        stanzas.extend(wrapped);
    }
    let header = Header::build(stanzas, &file_key)?;
    output
        .write_all(&header.to_bytes())
        .map_err(io_error("writing the capsule"))?;
    let mut nonce = [0u8; stream::NONCE];
    OsRng.fill_bytes(&mut nonce);
    let sealed = stream::encrypt(&file_key, &nonce, plaintext, &mut output, progress)?;
    output.flush().map_err(io_error("writing the capsule"))?;
    Ok(sealed)
}

/// A capsule's header, read and checked, and a reader positioned at its payload.
struct Opened<R> {
    header_bytes: Vec<u8>,
    header: Header,
    payload: io::Chain<Cursor<Vec<u8>>, R>,
}

fn read_capsule<R: Read>(mut input: R) -> Result<Opened<R>, CapsuleError> {
    let (header_bytes, rest) = header::read_header(&mut input)?;
    let header = Header::parse(&header_bytes)?;
    Ok(Opened {
        header_bytes,
        header,
        payload: Cursor::new(rest).chain(input),
    })
}

/// Decrypts `capsule` to `output` chunk by chunk, each chunk verified before it is written.
/// A damaged capsule stops with an error after the chunks before the damage were written: use
/// [`open_to_file`] unless the consumer discards output on error. Returns the plaintext length.
pub fn open(
    capsule: impl Read,
    mut output: impl Write,
    opener: &Opener<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, CapsuleError> {
    let opened = read_capsule(capsule)?;
    let file_key = opener.file_key(&opened.header)?;
    let written = stream::decrypt(&file_key, opened.payload, &mut output, progress)?;
    output.flush().map_err(io_error("writing the plaintext"))?;
    Ok(written)
}

/// Opens `capsule` into the file `destination`, which appears (atomically renamed from a
/// temporary file in the same directory) only once every chunk, the last included, verified.
/// On any error nothing is left at `destination` and the temporary file is removed. A process
/// killed mid-way can leave the temporary `.capsule-open-*` file (verified chunks only, never
/// at `destination`); remove such leftovers.
pub fn open_to_file(
    capsule: impl Read,
    destination: &Path,
    opener: &Opener<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, CapsuleError> {
    // Unbuffered: the payload is written a verified 64 KiB chunk at a time.
    write_then_rename(destination, ".capsule-open-", |file| {
        open(capsule, file, opener, progress)
    })
}

/// Writes `destination` through a temporary file beside it (named `prefix…`): `write` fills
/// it, then it is synced and renamed into place. On any error the temporary file is removed
/// and `destination` is left as it was.
pub fn write_then_rename<T, E: From<CapsuleError>>(
    destination: &Path,
    prefix: &str,
    write: impl FnOnce(&mut std::fs::File) -> Result<T, E>,
) -> Result<T, E> {
    let directory = match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(prefix)
        .tempfile_in(directory)
        .map_err(io_error("creating a temporary file beside the destination"))?;
    let value = write(temporary.as_file_mut())?;
    temporary
        .as_file()
        .sync_all()
        .map_err(io_error("syncing the output"))?;
    temporary
        .persist(destination)
        .map_err(|e| CapsuleError::Io {
            what: "renaming the output into place",
            source: e.error,
        })?;
    Ok(value)
}

/// A new header for the capsule whose header is `header_bytes`: the same file key and stanzas,
/// plus a stanza for each of `add`, and a new MAC. The opener must open the capsule (and its
/// MAC must verify), so a tampered header is never re-signed.
pub fn rewrap_header(
    header_bytes: &[u8],
    opener: &Opener<'_>,
    add: &[Recipient],
) -> Result<Vec<u8>, CapsuleError> {
    let header = Header::parse(header_bytes)?;
    let file_key = opener.file_key(&header)?;
    let mut stanzas = header.copy_stanzas();
    for recipient in add {
        let (new, _labels) = recipient
            .to_age()?
            .wrap_file_key(&file_key)
            .map_err(|e| CapsuleError::Seal(e.to_string()))?;
        stanzas.extend(new);
    }
    Ok(Header::build(stanzas, &file_key)?.to_bytes())
}

/// Re-wraps a whole capsule: writes the new header, then copies the payload unchanged.
pub fn rewrap(
    capsule: impl Read,
    mut output: impl Write,
    opener: &Opener<'_>,
    add: &[Recipient],
) -> Result<(), CapsuleError> {
    let mut opened = read_capsule(capsule)?;
    let header = rewrap_header(&opened.header_bytes, opener, add)?;
    output
        .write_all(&header)
        .map_err(io_error("writing the re-wrapped capsule"))?;
    io::copy(&mut opened.payload, &mut output).map_err(io_error("copying the payload"))?;
    output
        .flush()
        .map_err(io_error("writing the re-wrapped capsule"))
}

/// Key release: the header that lets `session_key` (an attested executor's X25519 session key)
/// open the capsule, bound to `binding` if given. The caller decides whether the requester may
/// have the key (the gateway checks the chain); this only re-wraps.
pub fn release_to(
    header_bytes: &[u8],
    owner: &Opener<'_>,
    session_key: PublicKey,
    binding: Option<Binding>,
) -> Result<Vec<u8>, CapsuleError> {
    rewrap_header(
        header_bytes,
        owner,
        &[Recipient {
            key: session_key,
            binding,
        }],
    )
}

/// What a header says without opening it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    /// The header's length in bytes (the payload starts after it).
    pub header_len: usize,
    pub recipients: Vec<StanzaInfo>,
}

/// One recipient stanza, as far as it can be read without a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StanzaInfo {
    /// A plain age X25519 stanza (its ephemeral share; the recipient is not visible).
    X25519 { ephemeral: String },
    /// A bound X25519 stanza.
    BoundX25519 { ephemeral: String },
    /// Another stanza type (age plugins, scrypt, grease).
    Other { tag: String },
}

/// Reads a capsule's header without opening it.
pub fn inspect(capsule: impl Read) -> Result<HeaderInfo, CapsuleError> {
    let opened = read_capsule(capsule)?;
    let recipients = opened
        .header
        .stanzas()
        .iter()
        .map(|stanza| match (stanza.tag.as_str(), &stanza.args[..]) {
            (X25519_TAG, [ephemeral]) => StanzaInfo::X25519 {
                ephemeral: ephemeral.clone(),
            },
            (BOUND_TAG, [ephemeral]) => StanzaInfo::BoundX25519 {
                ephemeral: ephemeral.clone(),
            },
            (tag, _) => StanzaInfo::Other { tag: tag.into() },
        })
        .collect();
    Ok(HeaderInfo {
        header_len: opened.header_bytes.len(),
        recipients,
    })
}

/// Reads and checks a capsule's header from `input`; returns the header's bytes and a reader of
/// the payload that follows it (for storing them apart without holding the capsule).
pub fn read_split<R: Read>(input: R) -> Result<(Vec<u8>, impl Read), CapsuleError> {
    read_capsule(input).map(|opened| (opened.header_bytes, opened.payload))
}

/// Splits a capsule file into its header and its payload (for storing them apart).
pub fn split(capsule: &[u8]) -> Result<(&[u8], &[u8]), CapsuleError> {
    let (header_bytes, _) = header::read_header(capsule)?;
    Header::parse(&header_bytes)?;
    Ok(capsule.split_at(header_bytes.len()))
}
