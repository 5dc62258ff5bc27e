//! Bytes on the socket: the connection header, 3-byte length framing, and
//! binary nodes in and out of frame payloads (all wacore codecs).

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use wacore::framing::{encode_frame, FrameDecoder};
use wacore_binary::consts::WA_CONN_HEADER;
use wacore_binary::marshal::{marshal, unmarshal_ref};
use wacore_binary::util::unpack;
use wacore_binary::Node;

/// Reassembles frames from WebSocket messages. The client's first write starts
/// with the `WA` header, optionally preceded by an `ED` edge-routing
/// pre-intro; neither is part of a frame.
#[derive(Default)]
pub(crate) struct Inbound {
    header_seen: bool,
    prefix: Vec<u8>,
    decoder: FrameDecoder,
}

impl Inbound {
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<()> {
        if self.header_seen {
            self.decoder.feed(data);
            return Ok(());
        }
        self.prefix.extend_from_slice(data);
        let mut at = 0;
        if self.prefix.starts_with(b"ED") {
            if self.prefix.len() < 7 {
                return Ok(());
            }
            let len = usize::from(self.prefix[4]) << 16
                | usize::from(self.prefix[5]) << 8
                | usize::from(self.prefix[6]);
            at = 7 + len;
        }
        if self.prefix.len() < at + WA_CONN_HEADER.len() {
            return Ok(());
        }
        if self.prefix[at..at + 2] != WA_CONN_HEADER[..2] {
            bail!("connection does not start with the WA header");
        }
        self.header_seen = true;
        let rest = self.prefix.split_off(at + WA_CONN_HEADER.len());
        self.prefix.clear();
        self.decoder.feed(&rest);
        Ok(())
    }

    pub(crate) fn next_frame(&mut self) -> Option<BytesMut> {
        if !self.header_seen {
            return None;
        }
        self.decoder.decode_frame()
    }
}

pub(crate) fn frame(payload: &[u8]) -> Result<Vec<u8>> {
    encode_frame(payload, None)
}

/// A node as frame plaintext: flag byte and binary XMPP.
pub(crate) fn encode_node(node: &Node) -> Result<Vec<u8>> {
    Ok(marshal(node)?)
}

pub(crate) fn decode_node(plaintext: &[u8]) -> Result<Node> {
    let body = unpack(plaintext).context("frame flag byte")?;
    let node = unmarshal_ref(&body).context("binary node")?;
    Ok(node.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore_noise::build_handshake_header;

    fn first_write(routing: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
        let (header, _) = build_handshake_header(routing);
        encode_frame(payload, Some(&header)).expect("frame")
    }

    #[test]
    fn the_header_is_stripped_with_or_without_edge_routing() {
        for routing in [None, Some(&[1u8, 2, 3][..])] {
            let mut inbound = Inbound::default();
            let bytes = first_write(routing, b"hello");
            // Split anywhere: reassembly must not care.
            let (a, b) = bytes.split_at(5);
            inbound.feed(a).expect("feed");
            assert!(inbound.next_frame().is_none());
            inbound.feed(b).expect("feed");
            assert_eq!(inbound.next_frame().expect("a frame").as_ref(), b"hello");
            inbound.feed(&frame(b"next").expect("frame")).expect("feed");
            assert_eq!(inbound.next_frame().expect("a frame").as_ref(), b"next");
        }
    }

    #[test]
    fn a_stream_without_the_header_is_refused() {
        let mut inbound = Inbound::default();
        assert!(inbound.feed(b"GET / HTTP/1.1").is_err());
    }
}
