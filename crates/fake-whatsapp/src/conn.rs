//! One client socket: the Noise handshake, then a reader that decrypts and
//! dispatches stanzas and a writer that encrypts what handlers send.

use anyhow::{bail, Context, Result};
use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use wacore_binary::Node;
use waproto::buffa::Message as _;
use waproto::whatsapp as wa;

use crate::noise::{self, Half, HelloReply};
use crate::server::{FakeServer, Out, Outbox};
use crate::wire::{self, Inbound};
use crate::{login, stanza};

/// Who is on the other end of a connection once the handshake is done.
#[derive(Clone, Debug)]
pub(crate) enum Peer {
    /// An unlinked companion showing QR codes.
    Pairing,
    /// A linked device.
    Device { phone: String, device: u16 },
    /// Refused at login; only waiting for the socket to close.
    Refused,
}

pub(crate) struct Conn {
    pub outbox: Outbox,
    pub peer: Peer,
}

impl Conn {
    pub(crate) fn label(&self) -> String {
        match &self.peer {
            Peer::Pairing => format!("pairing#{}", self.outbox.id),
            Peer::Device { phone, device } => format!("{phone}:{device}"),
            Peer::Refused => format!("refused#{}", self.outbox.id),
        }
    }
}

pub(crate) async fn serve(server: FakeServer, socket: WebSocket) {
    if let Err(e) = run(server, socket).await {
        tracing::debug!(error = %e, "connection ended");
    }
}

async fn next_frame(stream: &mut SplitStream<WebSocket>, inbound: &mut Inbound) -> Result<Vec<u8>> {
    loop {
        if let Some(frame) = inbound.next_frame() {
            return Ok(frame.to_vec());
        }
        match stream.next().await {
            Some(Ok(Message::Binary(data))) => inbound.feed(&data)?,
            Some(Ok(Message::Close(_))) | None => bail!("socket closed"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

async fn run(server: FakeServer, socket: WebSocket) -> Result<()> {
    let (mut sink, mut stream) = socket.split();
    let mut inbound = Inbound::default();

    let hello = next_frame(&mut stream, &mut inbound).await?;
    let established = match noise::respond_to_hello(&server.inner.key, &hello)? {
        HelloReply::Ready { reply, established } => {
            sink.send(Message::Binary(wire::frame(&reply)?.into())).await?;
            established
        }
        HelloReply::AwaitFinish { reply, pending } => {
            sink.send(Message::Binary(wire::frame(&reply)?.into())).await?;
            let finish = next_frame(&mut stream, &mut inbound).await?;
            pending.finish(&finish)?
        }
    };
    let payload = wa::ClientPayload::decode_from_slice(&established.payload).context("ClientPayload")?;
    let pattern = established.pattern;
    let client_static = established.client_static;
    let noise::Transport { write, mut read } = established.transport;

    let (outbox, rx) = Outbox::new(server.next_conn_id());
    let mut writer = tokio::spawn(write_loop(sink, write, rx, outbox.id));
    let peer = login::admit(&server, &outbox, &payload, client_static, pattern);
    let conn = Conn { outbox, peer };
    tracing::debug!(conn = %conn.label(), ?pattern, "handshake complete");

    let result = loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if let Err(e) = read_frames(&server, &conn, &mut inbound, &mut read, &data) {
                        break Err(e);
                    }
                }
                Some(Ok(Message::Close(_))) | None => break Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e.into()),
            },
            _ = &mut writer => break Ok(()),
        }
    };
    login::gone(&server, &conn);
    writer.abort();
    result
}

fn read_frames(
    server: &FakeServer,
    conn: &Conn,
    inbound: &mut Inbound,
    read: &mut Half,
    data: &[u8],
) -> Result<()> {
    inbound.feed(data)?;
    while let Some(frame) = inbound.next_frame() {
        let plaintext = read.open(&frame)?;
        let node = wire::decode_node(&plaintext)?;
        tracing::debug!(conn = %conn.label(), stanza = %stanza::render(&node), "<-");
        crate::dispatch::handle(server, conn, node);
    }
    Ok(())
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut write: Half,
    mut rx: mpsc::UnboundedReceiver<Out>,
    id: u64,
) {
    while let Some(out) = rx.recv().await {
        match out {
            Out::Node(node) => {
                tracing::debug!(conn = id, stanza = %stanza::render(&node), "->");
                if let Err(e) = send_node(&mut sink, &mut write, &node).await {
                    tracing::debug!(conn = id, error = %e, "write failed");
                    return;
                }
            }
            Out::Close => {
                let _ = sink.send(Message::Close(None)).await;
                let _ = sink.close().await;
                return;
            }
        }
    }
}

async fn send_node(sink: &mut SplitSink<WebSocket, Message>, write: &mut Half, node: &Node) -> Result<()> {
    let plaintext = wire::encode_node(node)?;
    let sealed = write.seal(&plaintext)?;
    sink.send(Message::Binary(wire::frame(&sealed)?.into())).await?;
    Ok(())
}
