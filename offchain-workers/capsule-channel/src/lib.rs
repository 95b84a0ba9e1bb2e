//! # Capsule channel
//!
//! The encrypted channel between an HPC's `capsule-agent` and its gateway's attestation server
//! (ARCHITECTURE, flow 2): one [Noise] session over a byte stream, with
//!
//! - **mutual static keys**: `Noise_IKpsk1_25519_ChaChaPoly_BLAKE2s`. The agent (initiator)
//!   knows the gateway's static key from the boot server; the gateway learns the agent's, its
//!   per-boot X25519 session key, in the first message, encrypted, and pins it for the boot. The
//!   pre-shared key is the per-boot secret the agent fetched from the boot server, mixed into
//!   the first message (`psk1`, not `psk2`), so the gateway refuses a wrong one before it
//!   answers: only the process that fetched it completes the handshake.
//! - **scheduled rekeying** (Noise §11.3, which snow implements but never schedules): each
//!   direction rekeys after [`Schedule::rekey_after_messages`] messages or
//!   [`Schedule::rekey_after`], whichever comes first. The sender marks the last message under
//!   a key inside its authenticated plaintext; the receiver rekeys after reading it. A message
//!   under an old key no longer decrypts.
//! - **periodic full re-handshakes** with fresh ephemeral keys: the agent starts one after
//!   [`Schedule::rehandshake_after`]; the gateway refuses a session that has not had one within
//!   twice that, and a re-handshake whose static key differs from the pinned one.
//! - **messages of any size** up to [`Schedule::max_message`], in chunks of at most one Noise
//!   message each (65,535 bytes), every chunk authenticated and in order.
//!
//! Frames on the stream: `u16` big-endian length, then a kind byte (handshake or transport),
//! then the Noise message. A transport plaintext is a flag byte (more chunks follow, last under
//! this key, re-handshake follows) and the chunk. Any error poisons the channel: the caller
//! drops it (and, on the gateway, treats the HPC as unreachable).
//!
//! [Noise]: https://noiseprotocol.org/noise.html
use std::{collections::VecDeque, time::Duration};

use snow::{Builder, HandshakeState, TransportState};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    time::Instant,
};
use tracing::debug;

/// The Noise protocol of every session.
pub const NOISE_PARAMS: &str = "Noise_IKpsk1_25519_ChaChaPoly_BLAKE2s";
/// Bound into every handshake, so no other protocol's session is accepted as ours.
pub const PROLOGUE: &[u8] = b"capsule/agent-channel/v1";
/// Largest Noise message.
pub const MAX_NOISE_MESSAGE: usize = 65_535;
/// AEAD tag length.
const TAG: usize = 16;
/// Largest chunk of a message in one transport frame: the frame's `u16` length covers the kind
/// byte, the flag byte, the chunk and the tag.
pub const MAX_CHUNK: usize = MAX_NOISE_MESSAGE - TAG - 2;

/// Most whole messages kept while a re-handshake waits for its answer.
const MAX_QUEUED: usize = 64;

const KIND_HANDSHAKE: u8 = 1;
const KIND_TRANSPORT: u8 = 2;

const FLAG_MORE: u8 = 1;
const FLAG_REKEY: u8 = 2;
const FLAG_REHANDSHAKE: u8 = 4;

/// When keys change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Rekey a direction after this many transport frames under one key.
    pub rekey_after_messages: u64,
    /// Rekey a direction when its key is this old.
    pub rekey_after: Duration,
    /// The agent re-handshakes when the session is this old; the gateway refuses one twice as
    /// old.
    pub rehandshake_after: Duration,
    /// Largest message accepted.
    pub max_message: usize,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            rekey_after_messages: 1000,
            rekey_after: Duration::from_secs(60),
            rehandshake_after: Duration::from_secs(3600),
            max_message: 64 << 20,
        }
    }
}

/// What happened to keys so far, per side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyChanges {
    pub rekeys_sent: u64,
    pub rekeys_received: u64,
    /// Full handshakes, the first included.
    pub handshakes: u64,
}

/// Why the channel failed. Every error poisons it.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("the peer closed the channel")]
    Closed,
    #[error("the channel's stream failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "the handshake failed (wrong key, wrong pre-shared secret, or a garbled message): {0}"
    )]
    Handshake(snow::Error),
    #[error(
        "a message does not decrypt under the current key (replayed, garbled, or under an old key)"
    )]
    Decrypt,
    #[error("the peer's static key changed: it is not the agent this boot pinned")]
    PeerChanged,
    #[error("unexpected frame kind {0}")]
    UnexpectedFrame(u8),
    #[error("a message of more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the session had no re-handshake for {0:?}: refused")]
    Stale(Duration),
    #[error("the channel failed earlier and cannot be used")]
    Poisoned,
    #[error("bad key material: {0}")]
    Key(snow::Error),
}

/// Which end this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The agent: knows the gateway's key, starts (re-)handshakes.
    Initiator { responder: [u8; 32] },
    /// The gateway: pins the agent's key.
    Responder,
}

/// One end of an established channel over `S`.
pub struct Channel<S> {
    stream: S,
    role: Role,
    local_private: [u8; 32],
    psk: [u8; 32],
    remote_static: [u8; 32],
    transport: Option<TransportState>,
    schedule: Schedule,
    sent_under_key: u64,
    send_key_since: Instant,
    session_since: Instant,
    /// Whole messages read while waiting for a re-handshake's answer.
    queued: VecDeque<Vec<u8>>,
    changes: KeyChanges,
    poisoned: bool,
}

/// A 32-byte key, secret or salt written as 64 hex digits (surrounding whitespace allowed): how
/// the daemons take them on their command lines and in their files.
pub fn key_from_hex(text: &str) -> Result<[u8; 32], KeyHexError> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(KeyHexError);
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or(KeyHexError)?, 16)
            .map_err(|_| KeyHexError)?;
    }
    Ok(key)
}

/// Not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("expected 32 bytes as 64 hex digits")]
pub struct KeyHexError;

/// An X25519 key pair for a Noise static key (private, public).
pub fn generate_static_key() -> Result<([u8; 32], [u8; 32]), ChannelError> {
    let keypair = Builder::new(params())
        .generate_keypair()
        .map_err(ChannelError::Key)?;
    let mut private = [0u8; 32];
    let mut public = [0u8; 32];
    private.copy_from_slice(&keypair.private);
    public.copy_from_slice(&keypair.public);
    Ok((private, public))
}

/// The X25519 public key of a Noise static private key (what a gateway hands its HPC).
pub fn public_key(private: &[u8; 32]) -> [u8; 32] {
    use snow::resolvers::{CryptoResolver, DefaultResolver};
    let mut public = [0u8; 32];
    // Curve25519 is always in snow's default resolver.
    if let Some(mut dh) = DefaultResolver.resolve_dh(&snow::params::DHChoice::Curve25519) {
        dh.set(private);
        public.copy_from_slice(dh.pubkey());
    }
    public
}

fn params() -> snow::params::NoiseParams {
    // A constant that parses: checked by the tests.
    NOISE_PARAMS.parse().unwrap_or_else(|_| unreachable!())
}

fn builder<'a>(
    local_private: &'a [u8; 32],
    psk: &'a [u8; 32],
) -> Result<Builder<'a>, ChannelError> {
    Builder::new(params())
        .prologue(PROLOGUE)
        .and_then(|b| b.local_private_key(local_private))
        .and_then(|b| b.psk(1, psk))
        .map_err(ChannelError::Key)
}

async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    kind: u8,
    body: &[u8],
) -> Result<(), ChannelError> {
    let len = u16::try_from(body.len() + 1).map_err(|_| ChannelError::TooLarge {
        limit: MAX_NOISE_MESSAGE,
    })?;
    let mut frame = Vec::with_capacity(body.len() + 3);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.push(kind);
    frame.extend_from_slice(body);
    stream.write_all(&frame).await?;
    stream.flush().await?;
    Ok(())
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(u8, Vec<u8>), ChannelError> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(ChannelError::Closed)
        }
        Err(e) => return Err(e.into()),
    }
    let len = usize::from(u16::from_be_bytes(len));
    if len == 0 {
        return Err(ChannelError::UnexpectedFrame(0));
    }
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ChannelError::Closed
        } else {
            e.into()
        }
    })?;
    let kind = frame[0];
    frame.remove(0);
    Ok((kind, frame))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Channel<S> {
    /// The agent's end: handshakes with the gateway whose static key is `responder`.
    pub async fn initiate(
        mut stream: S,
        local_private: [u8; 32],
        responder: [u8; 32],
        psk: [u8; 32],
        schedule: Schedule,
    ) -> Result<Self, ChannelError> {
        let transport = initiator_handshake(&mut stream, &local_private, &responder, &psk).await?;
        Ok(Self::established(
            stream,
            Role::Initiator { responder },
            (local_private, psk),
            responder,
            transport,
            schedule,
        ))
    }

    /// The gateway's end: answers one handshake, and pins the agent's static key (which must be
    /// `expected` when given).
    pub async fn accept(
        mut stream: S,
        local_private: [u8; 32],
        psk: [u8; 32],
        expected: Option<[u8; 32]>,
        schedule: Schedule,
    ) -> Result<Self, ChannelError> {
        let (kind, message) = read_frame(&mut stream).await?;
        if kind != KIND_HANDSHAKE {
            return Err(ChannelError::UnexpectedFrame(kind));
        }
        let (transport, remote) =
            responder_handshake(&mut stream, &local_private, &psk, &message).await?;
        if expected.is_some_and(|key| key != remote) {
            return Err(ChannelError::PeerChanged);
        }
        Ok(Self::established(
            stream,
            Role::Responder,
            (local_private, psk),
            remote,
            transport,
            schedule,
        ))
    }

    /// A channel whose first handshake just completed.
    fn established(
        stream: S,
        role: Role,
        (local_private, psk): ([u8; 32], [u8; 32]),
        remote_static: [u8; 32],
        transport: TransportState,
        schedule: Schedule,
    ) -> Self {
        let now = Instant::now();
        Self {
            stream,
            role,
            local_private,
            psk,
            remote_static,
            transport: Some(transport),
            schedule,
            sent_under_key: 0,
            send_key_since: now,
            session_since: now,
            queued: VecDeque::new(),
            changes: KeyChanges {
                handshakes: 1,
                ..KeyChanges::default()
            },
            poisoned: false,
        }
    }

    /// The peer's static key (the agent's session key, on the gateway).
    pub fn remote_static(&self) -> [u8; 32] {
        self.remote_static
    }

    /// Rekeys and handshakes so far.
    pub fn key_changes(&self) -> KeyChanges {
        self.changes
    }

    /// Sends one message, rekeying or re-handshaking first when the schedule says so.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), ChannelError> {
        self.check()?;
        let result = self.send_inner(message).await;
        self.poisoned |= result.is_err();
        result
    }

    /// Receives one message.
    pub async fn recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.check()?;
        if let Some(message) = self.queued.pop_front() {
            return Ok(message);
        }
        let result = self.recv_inner().await;
        self.poisoned |= result.is_err();
        result
    }

    fn check(&self) -> Result<(), ChannelError> {
        if self.poisoned {
            return Err(ChannelError::Poisoned);
        }
        let age = self.session_since.elapsed();
        if self.role == Role::Responder && age > self.schedule.rehandshake_after * 2 {
            return Err(ChannelError::Stale(age));
        }
        Ok(())
    }

    async fn send_inner(&mut self, message: &[u8]) -> Result<(), ChannelError> {
        if message.len() > self.schedule.max_message {
            return Err(ChannelError::TooLarge {
                limit: self.schedule.max_message,
            });
        }
        let rehandshake = matches!(self.role, Role::Initiator { .. })
            && self.session_since.elapsed() >= self.schedule.rehandshake_after;
        let mut chunks = message.chunks(MAX_CHUNK).peekable();
        let mut first = true;
        while first || chunks.peek().is_some() {
            let chunk = chunks.next().unwrap_or(&[]);
            first = false;
            let last_chunk = chunks.peek().is_none();
            let mut flags = if last_chunk { 0 } else { FLAG_MORE };
            let rekey = self.sent_under_key + 1 >= self.schedule.rekey_after_messages
                || self.send_key_since.elapsed() >= self.schedule.rekey_after;
            if last_chunk && rehandshake {
                flags |= FLAG_REHANDSHAKE;
            } else if rekey {
                flags |= FLAG_REKEY;
            }
            self.write_transport(flags, chunk).await?;
            if flags & FLAG_REKEY != 0 {
                self.transport_mut()?.rekey_outgoing();
                self.sent_under_key = 0;
                self.send_key_since = Instant::now();
                self.changes.rekeys_sent += 1;
                debug!("rekeyed outgoing");
            }
        }
        if rehandshake {
            self.rehandshake_as_initiator().await?;
        }
        Ok(())
    }

    fn transport_mut(&mut self) -> Result<&mut TransportState, ChannelError> {
        self.transport.as_mut().ok_or(ChannelError::Poisoned)
    }

    async fn write_transport(&mut self, flags: u8, chunk: &[u8]) -> Result<(), ChannelError> {
        let mut plain = Vec::with_capacity(chunk.len() + 1);
        plain.push(flags);
        plain.extend_from_slice(chunk);
        let mut sealed = vec![0u8; plain.len() + TAG];
        let n = self
            .transport_mut()?
            .write_message(&plain, &mut sealed)
            .map_err(|_| ChannelError::Decrypt)?;
        sealed.truncate(n);
        write_frame(&mut self.stream, KIND_TRANSPORT, &sealed).await?;
        self.sent_under_key += 1;
        Ok(())
    }

    /// Reads frames until one whole message (or a re-handshake's end, on the initiator).
    async fn recv_inner(&mut self) -> Result<Vec<u8>, ChannelError> {
        let mut message = Vec::new();
        loop {
            let (kind, body) = read_frame(&mut self.stream).await?;
            if kind != KIND_TRANSPORT {
                return Err(ChannelError::UnexpectedFrame(kind));
            }
            let flags = self.take_chunk(&body, &mut message)?;
            if flags & FLAG_REHANDSHAKE != 0 {
                if self.role != Role::Responder {
                    return Err(ChannelError::UnexpectedFrame(kind));
                }
                self.rehandshake_as_responder().await?;
            }
            if flags & FLAG_MORE == 0 {
                return Ok(message);
            }
        }
    }

    /// Decrypts one transport frame onto `message` (within the size limit), rekeys the
    /// incoming direction when the frame was the last under its key, and returns its flags.
    fn take_chunk(&mut self, body: &[u8], message: &mut Vec<u8>) -> Result<u8, ChannelError> {
        let (flags, chunk) = self.open(body)?;
        if message.len() + chunk.len() > self.schedule.max_message {
            return Err(ChannelError::TooLarge {
                limit: self.schedule.max_message,
            });
        }
        message.extend_from_slice(&chunk);
        if flags & FLAG_REKEY != 0 {
            self.transport_mut()?.rekey_incoming();
            self.changes.rekeys_received += 1;
            debug!("rekeyed incoming");
        }
        Ok(flags)
    }

    fn open(&mut self, body: &[u8]) -> Result<(u8, Vec<u8>), ChannelError> {
        let mut plain = vec![0u8; body.len()];
        let n = self
            .transport_mut()?
            .read_message(body, &mut plain)
            .map_err(|_| ChannelError::Decrypt)?;
        plain.truncate(n);
        if plain.is_empty() {
            return Err(ChannelError::Decrypt);
        }
        let flags = plain.remove(0);
        Ok((flags, plain))
    }

    async fn rehandshake_as_initiator(&mut self) -> Result<(), ChannelError> {
        let Role::Initiator { responder } = self.role else {
            return Err(ChannelError::UnexpectedFrame(KIND_HANDSHAKE));
        };
        let handshake =
            send_first_message(&mut self.stream, &self.local_private, &responder, &self.psk)
                .await?;
        // Until the answer, the gateway may still send under the old session: keep what it
        // sends for `recv`.
        let mut partial = Vec::new();
        loop {
            let (kind, body) = read_frame(&mut self.stream).await?;
            match kind {
                KIND_HANDSHAKE => {
                    let transport = finish_initiator(handshake, &body)?;
                    self.install(transport);
                    return Ok(());
                }
                KIND_TRANSPORT => {
                    if self.queued.len() >= MAX_QUEUED {
                        return Err(ChannelError::TooLarge {
                            limit: self.schedule.max_message,
                        });
                    }
                    let flags = self.take_chunk(&body, &mut partial)?;
                    if flags & FLAG_MORE == 0 {
                        self.queued.push_back(std::mem::take(&mut partial));
                    }
                }
                other => return Err(ChannelError::UnexpectedFrame(other)),
            }
        }
    }

    async fn rehandshake_as_responder(&mut self) -> Result<(), ChannelError> {
        let (kind, message) = read_frame(&mut self.stream).await?;
        if kind != KIND_HANDSHAKE {
            return Err(ChannelError::UnexpectedFrame(kind));
        }
        let (transport, remote) =
            responder_handshake(&mut self.stream, &self.local_private, &self.psk, &message).await?;
        if remote != self.remote_static {
            return Err(ChannelError::PeerChanged);
        }
        self.install(transport);
        Ok(())
    }

    fn install(&mut self, transport: TransportState) {
        self.transport = Some(transport);
        let now = Instant::now();
        self.sent_under_key = 0;
        self.send_key_since = now;
        self.session_since = now;
        self.changes.handshakes += 1;
        debug!("re-handshake complete");
    }
}

async fn initiator_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local_private: &[u8; 32],
    responder: &[u8; 32],
    psk: &[u8; 32],
) -> Result<TransportState, ChannelError> {
    let handshake = send_first_message(stream, local_private, responder, psk).await?;
    let (kind, answer) = read_frame(stream).await?;
    if kind != KIND_HANDSHAKE {
        return Err(ChannelError::UnexpectedFrame(kind));
    }
    finish_initiator(handshake, &answer)
}

/// Starts an initiator's handshake (first or again): writes its first message.
async fn send_first_message<S: AsyncWrite + Unpin>(
    stream: &mut S,
    local_private: &[u8; 32],
    responder: &[u8; 32],
    psk: &[u8; 32],
) -> Result<HandshakeState, ChannelError> {
    let mut handshake = builder(local_private, psk)?
        .remote_public_key(responder)
        .and_then(|b| b.build_initiator())
        .map_err(ChannelError::Key)?;
    let mut first = vec![0u8; MAX_NOISE_MESSAGE];
    let n = handshake
        .write_message(&[], &mut first)
        .map_err(ChannelError::Handshake)?;
    write_frame(stream, KIND_HANDSHAKE, &first[..n]).await?;
    Ok(handshake)
}

fn finish_initiator(
    mut handshake: HandshakeState,
    answer: &[u8],
) -> Result<TransportState, ChannelError> {
    let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
    handshake
        .read_message(answer, &mut payload)
        .map_err(ChannelError::Handshake)?;
    handshake
        .into_transport_mode()
        .map_err(ChannelError::Handshake)
}

async fn responder_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local_private: &[u8; 32],
    psk: &[u8; 32],
    first: &[u8],
) -> Result<(TransportState, [u8; 32]), ChannelError> {
    let mut handshake = builder(local_private, psk)?
        .build_responder()
        .map_err(ChannelError::Key)?;
    let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
    handshake
        .read_message(first, &mut payload)
        .map_err(ChannelError::Handshake)?;
    let mut remote = [0u8; 32];
    remote.copy_from_slice(
        handshake
            .get_remote_static()
            .ok_or(ChannelError::PeerChanged)?,
    );
    let mut answer = vec![0u8; MAX_NOISE_MESSAGE];
    let n = handshake
        .write_message(&[], &mut answer)
        .map_err(ChannelError::Handshake)?;
    write_frame(stream, KIND_HANDSHAKE, &answer[..n]).await?;
    let transport = handshake
        .into_transport_mode()
        .map_err(ChannelError::Handshake)?;
    Ok((transport, remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_name_parses() {
        assert!(NOISE_PARAMS.parse::<snow::params::NoiseParams>().is_ok());
    }

    #[test]
    fn the_public_key_is_the_generated_pairs() {
        let (private, public) = generate_static_key().expect("key");
        assert_eq!(public_key(&private), public);
        assert_ne!(public_key(&[1; 32]), public_key(&[2; 32]));
    }

    #[test]
    fn keys_are_64_hex_digits() {
        let text = format!("  {}\n", "0a".repeat(32));
        assert_eq!(key_from_hex(&text).expect("parses"), [0x0a; 32]);
        assert!(key_from_hex("0a").is_err());
        assert!(key_from_hex(&"zz".repeat(32)).is_err());
        assert!(
            key_from_hex(&"é".repeat(32)).is_err(),
            "not a panic on multi-byte text"
        );
    }
}
