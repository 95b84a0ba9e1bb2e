//! The channel between two real ends over in-memory streams, under tokio's paused clock: the
//! schedule's rekeys and re-handshakes happen on both sides while thousands of messages pass in
//! order; a replayed, garbled or dropped frame, a wrong pre-shared secret and another static
//! key are each a typed error.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use capsule_channel::{generate_static_key, Channel, ChannelError, Schedule};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

const PSK: [u8; 32] = [0x42; 32];

fn schedule() -> Schedule {
    Schedule {
        rekey_after_messages: 1000,
        rekey_after: Duration::from_secs(60),
        rehandshake_after: Duration::from_secs(600),
        max_message: 1 << 20,
    }
}

/// An agent and a gateway connected by `streams`.
async fn pair(
    agent_stream: DuplexStream,
    gateway_stream: DuplexStream,
    psk_agent: [u8; 32],
) -> (
    Result<Channel<DuplexStream>, ChannelError>,
    Result<Channel<DuplexStream>, ChannelError>,
    [u8; 32],
) {
    let (gateway_private, gateway_public) = generate_static_key().expect("key");
    let (agent_private, agent_public) = generate_static_key().expect("key");
    let gateway = tokio::spawn(async move {
        Channel::accept(gateway_stream, gateway_private, PSK, None, schedule()).await
    });
    let agent = Channel::initiate(
        agent_stream,
        agent_private,
        gateway_public,
        psk_agent,
        schedule(),
    )
    .await;
    (agent, gateway.await.expect("gateway task"), agent_public)
}

#[tokio::test(start_paused = true)]
async fn thousands_of_messages_pass_in_order_through_scheduled_rekeys_and_rehandshakes() {
    let (a, b) = duplex(1 << 20);
    let (agent, gateway, agent_public) = pair(a, b, PSK).await;
    let (mut agent, mut gateway) = (agent.expect("agent"), gateway.expect("gateway"));
    assert_eq!(
        gateway.remote_static(),
        agent_public,
        "the gateway pins the agent's key"
    );

    const MESSAGES: u32 = 5000;
    let echo = tokio::spawn(async move {
        for _ in 0..MESSAGES {
            let message = gateway.recv().await.expect("gateway receives");
            let mut answer = b"echo ".to_vec();
            answer.extend_from_slice(&message);
            gateway.send(&answer).await.expect("gateway sends");
        }
        gateway.key_changes()
    });
    for i in 0..MESSAGES {
        let message = format!("message {i}");
        agent.send(message.as_bytes()).await.expect("agent sends");
        let answer = agent.recv().await.expect("agent receives");
        assert_eq!(answer, format!("echo {message}").into_bytes(), "in order");
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let (agent_side, gateway_side) = (agent.key_changes(), echo.await.expect("echo task"));
    eprintln!("agent {agent_side:?}\ngateway {gateway_side:?}");
    for side in [agent_side, gateway_side] {
        assert!(side.rekeys_sent >= 3, "{side:?}");
        assert!(side.rekeys_received >= 3, "{side:?}");
        assert!(
            side.handshakes >= 4,
            "the first and at least 3 more: {side:?}"
        );
    }
    assert_eq!(agent_side.handshakes, gateway_side.handshakes);
}

/// Frames from the agent to the gateway pass through here; the test can replay one, garble the
/// next, or cut the stream.
struct Tap {
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    commands: tokio::sync::mpsc::UnboundedSender<Tamper>,
    task: tokio::task::JoinHandle<()>,
}

enum Tamper {
    Replay(usize),
    /// Answered once the flag is set.
    GarbleNext(tokio::sync::oneshot::Sender<()>),
    Cut,
}

fn tap(mut from_agent: DuplexStream, mut to_gateway: DuplexStream) -> Tap {
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::new()));
    let (commands, mut received) = tokio::sync::mpsc::unbounded_channel();
    let log = seen.clone();
    let task = tokio::spawn(async move {
        let mut garble = false;
        loop {
            tokio::select! {
                command = received.recv() => match command {
                    Some(Tamper::Replay(index)) => {
                        let frame = log.lock().expect("log")[index].clone();
                        to_gateway.write_all(&frame).await.expect("replay");
                    }
                    Some(Tamper::GarbleNext(done)) => {
                        garble = true;
                        let _ = done.send(());
                    }
                    Some(Tamper::Cut) | None => return,
                },
                len = from_agent.read_u16() => {
                    let Ok(len) = len else { return };
                    let mut frame = len.to_be_bytes().to_vec();
                    let mut body = vec![0u8; usize::from(len)];
                    if from_agent.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    frame.extend_from_slice(&body);
                    log.lock().expect("log").push(frame.clone());
                    if garble {
                        let last = frame.len() - 1;
                        frame[last] ^= 0x80;
                        garble = false;
                    }
                    if to_gateway.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Tap {
        seen,
        commands,
        task,
    }
}

/// An agent → tap → gateway pair (answers go straight back).
async fn tapped() -> (Channel<Joined>, Channel<Joined>, Tap) {
    let (agent_out, tap_in) = duplex(1 << 20);
    let (tap_out, gateway_in) = duplex(1 << 20);
    let (gateway_out, agent_in) = duplex(1 << 20);
    let tap = tap(tap_in, tap_out);
    let (gateway_private, gateway_public) = generate_static_key().expect("key");
    let (agent_private, _) = generate_static_key().expect("key");
    let gateway = tokio::spawn(async move {
        Channel::accept(
            Joined::new(gateway_in, gateway_out),
            gateway_private,
            PSK,
            None,
            schedule(),
        )
        .await
    });
    let agent = Channel::initiate(
        Joined::new(agent_in, agent_out),
        agent_private,
        gateway_public,
        PSK,
        schedule(),
    )
    .await
    .expect("agent");
    (agent, gateway.await.expect("task").expect("gateway"), tap)
}

/// A read half and a write half as one stream.
struct Joined {
    read: DuplexStream,
    write: DuplexStream,
}

impl Joined {
    fn new(read: DuplexStream, write: DuplexStream) -> Self {
        Self { read, write }
    }
}

impl tokio::io::AsyncRead for Joined {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Joined {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.write).poll_shutdown(cx)
    }
}

#[tokio::test(start_paused = true)]
async fn a_message_under_an_old_key_is_rejected() {
    let (mut agent, mut gateway, tap) = tapped().await;
    agent.send(b"before the rekey").await.expect("sends");
    assert_eq!(gateway.recv().await.expect("receives"), b"before the rekey");
    tokio::time::advance(Duration::from_secs(61)).await;
    agent
        .send(b"last under the first key")
        .await
        .expect("sends");
    assert_eq!(agent.key_changes().rekeys_sent, 1);
    assert_eq!(
        gateway.recv().await.expect("receives"),
        b"last under the first key"
    );
    agent.send(b"under the second key").await.expect("sends");
    assert_eq!(
        gateway.recv().await.expect("receives"),
        b"under the second key"
    );
    // Frame 0 is the handshake; 1, the first transport frame, was under the first key.
    let first_transport = tap.seen.lock().expect("log").len() - 3;
    tap.commands
        .send(Tamper::Replay(first_transport))
        .expect("tap");
    assert!(matches!(gateway.recv().await, Err(ChannelError::Decrypt)));
    assert!(
        matches!(gateway.recv().await, Err(ChannelError::Poisoned)),
        "a failed channel stays failed"
    );
}

#[tokio::test]
async fn a_garbled_frame_is_rejected() {
    let (mut agent, mut gateway, tap) = tapped().await;
    agent.send(b"fine").await.expect("sends");
    assert_eq!(gateway.recv().await.expect("receives"), b"fine");
    let (done, armed) = tokio::sync::oneshot::channel();
    tap.commands.send(Tamper::GarbleNext(done)).expect("tap");
    armed.await.expect("the tap garbles the next frame");
    agent.send(b"garbled on the way").await.expect("sends");
    assert!(matches!(gateway.recv().await, Err(ChannelError::Decrypt)));
}

#[tokio::test]
async fn a_dropped_channel_is_closed() {
    let (mut agent, mut gateway, tap) = tapped().await;
    tap.commands.send(Tamper::Cut).expect("tap");
    tap.task.await.expect("the tap ends");
    let _ = agent.send(b"into the void").await;
    assert!(matches!(gateway.recv().await, Err(ChannelError::Closed)));
}

#[tokio::test]
async fn a_wrong_pre_shared_secret_fails_the_handshake() {
    let (a, b) = duplex(1 << 16);
    let (agent, gateway, _) = pair(a, b, [0x43; 32]).await;
    assert!(
        matches!(gateway, Err(ChannelError::Handshake(_))),
        "the gateway refuses it"
    );
    assert!(
        matches!(agent, Err(ChannelError::Closed)),
        "and answers nothing"
    );
}

#[tokio::test]
async fn a_peer_with_another_static_key_is_refused() {
    let (a, b) = duplex(1 << 16);
    let (gateway_private, gateway_public) = generate_static_key().expect("key");
    let (agent_private, _) = generate_static_key().expect("key");
    let (_, pinned) = generate_static_key().expect("key");
    let gateway = tokio::spawn(async move {
        Channel::accept(b, gateway_private, PSK, Some(pinned), schedule()).await
    });
    let _ = Channel::initiate(a, agent_private, gateway_public, PSK, schedule()).await;
    assert!(matches!(
        gateway.await.expect("task"),
        Err(ChannelError::PeerChanged)
    ));
}

#[tokio::test]
async fn large_messages_arrive_whole_and_oversized_ones_are_refused() {
    let (a, b) = duplex(1 << 20);
    let (agent, gateway, _) = pair(a, b, PSK).await;
    let (mut agent, mut gateway) = (agent.expect("agent"), gateway.expect("gateway"));
    let large: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let sender = tokio::spawn(async move {
        agent.send(&large).await.expect("sends");
        let refused = agent.send(&vec![0u8; (1 << 20) + 1]).await;
        (large, refused)
    });
    let received = gateway.recv().await.expect("receives");
    let (large, refused) = sender.await.expect("task");
    assert_eq!(received, large);
    assert!(matches!(refused, Err(ChannelError::TooLarge { .. })));
}

#[tokio::test(start_paused = true)]
async fn the_gateway_refuses_a_session_never_rehandshaked() {
    let (a, b) = duplex(1 << 16);
    let (agent, gateway, _) = pair(a, b, PSK).await;
    let (_agent, mut gateway) = (agent.expect("agent"), gateway.expect("gateway"));
    tokio::time::advance(Duration::from_secs(1201)).await;
    assert!(matches!(gateway.recv().await, Err(ChannelError::Stale(_))));
}
