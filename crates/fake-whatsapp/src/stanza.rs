//! Small helpers for reading and building the binary-XMPP stanzas the server
//! exchanges with clients.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, NodeContent};

pub(crate) const SERVER: &str = "s.whatsapp.net";

pub(crate) fn attr(node: &Node, key: &str) -> Option<String> {
    node.attrs.get(key).map(|v| v.as_str().into_owned())
}

pub(crate) fn jid_attr(node: &Node, key: &str) -> Option<Jid> {
    node.attrs.get(key).and_then(|v| v.to_jid())
}

pub(crate) fn child<'a>(node: &'a Node, tag: &str) -> Option<&'a Node> {
    node.get_optional_child(tag)
}

pub(crate) fn children(node: &Node) -> &[Node] {
    node.children().unwrap_or_default()
}

pub(crate) fn bytes(node: &Node) -> Option<&[u8]> {
    match &node.content {
        Some(NodeContent::Bytes(b)) => Some(b),
        _ => None,
    }
}

pub(crate) fn child_bytes<'a>(node: &'a Node, tag: &str) -> Option<&'a [u8]> {
    child(node, tag).and_then(bytes)
}

/// A fresh stanza id, unique enough for one test run.
pub(crate) fn new_id() -> String {
    let n: u64 = rand::random();
    format!("{n:016X}")
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

pub(crate) fn iq_result(id: &str, content: Vec<Node>) -> Node {
    let b = NodeBuilder::new("iq").attr("from", SERVER).attr("type", "result").attr("id", id);
    if content.is_empty() {
        b.build()
    } else {
        b.children(content).build()
    }
}

pub(crate) fn iq_error(id: &str, code: u16, text: &str) -> Node {
    NodeBuilder::new("iq")
        .attr("from", SERVER)
        .attr("type", "error")
        .attr("id", id)
        .children([NodeBuilder::new("error").attr("code", code.to_string()).attr("text", text).build()])
        .build()
}

pub(crate) fn leaf(tag: &'static str) -> Node {
    NodeBuilder::new(tag).build()
}

pub(crate) fn bytes_node(tag: &'static str, data: impl Into<Vec<u8>>) -> Node {
    NodeBuilder::new(tag).bytes(data).build()
}

/// A one-line rendering for logs and the unhandled list.
pub(crate) fn render(node: &Node) -> String {
    let mut out = format!("<{}", node.tag);
    for (k, v) in node.attrs.iter() {
        out.push_str(&format!(" {k}=\"{v}\""));
    }
    match &node.content {
        None => out.push_str("/>"),
        Some(NodeContent::Bytes(b)) => out.push_str(&format!(">[{} bytes]</{}>", b.len(), node.tag)),
        Some(NodeContent::String(s)) => out.push_str(&format!(">{s}</{}>", node.tag)),
        Some(NodeContent::Nodes(ns)) => {
            out.push('>');
            for n in ns {
                out.push_str(&render(n));
            }
            out.push_str(&format!("</{}>", node.tag));
        }
    }
    out
}
