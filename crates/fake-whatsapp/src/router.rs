//! Routing between devices: messages fan out to every device the sender
//! encrypted for (opaque `<enc>` payloads, never decrypted), receipts go back
//! to the device or user they name, and every routed stanza waits in the
//! recipient device's queue until that device acks it.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, NodeContent, Server};

use crate::accounts::Queued;
use crate::conn::{Conn, Peer};
use crate::server::{FakeServer, State};
use crate::stanza::{self, attr, child, children, jid_attr};

/// Puts `node` in the device's queue and pushes it now if the device is
/// online and active; the phone (device 0) reads nothing.
pub(crate) fn deliver(state: &mut State, phone: &str, device: u16, node: Node) {
    if device == 0 {
        return;
    }
    let Some(dev) = state.registry.accounts.get_mut(phone).and_then(|a| a.devices.get_mut(&device)) else {
        return;
    };
    dev.queue.push(Queued {
        class: node.tag.to_string(),
        id: attr(&node, "id").unwrap_or_default(),
        kind: attr(&node, "type"),
        node: node.clone(),
    });
    if let Some(online) = state.online.get(&(phone.to_owned(), device)) {
        if online.active {
            online.outbox.send(node);
        }
    }
}

fn sender(conn: &Conn) -> Option<(String, u16)> {
    match &conn.peer {
        Peer::Device { phone, device } => Some((phone.clone(), *device)),
        _ => None,
    }
}

pub(crate) fn message(server: &FakeServer, conn: &Conn, msg: Node) {
    let Some((phone, sender_device)) = sender(conn) else { return };
    let (Some(id), Some(to)) = (attr(&msg, "id"), jid_attr(&msg, "to")) else {
        server.state().record_unhandled(&conn.label(), &msg);
        return;
    };
    let now = stanza::now_secs().to_string();
    let ack = NodeBuilder::new("ack")
        .attr("class", "message")
        .attr("id", id.as_str())
        .attr("from", to.clone())
        .attr("t", now.as_str());
    if !matches!(to.server, Server::Pn | Server::Lid) {
        // Groups, status and newsletters are not modelled: say so instead of
        // acking a message nobody will get.
        server.state().record_unhandled(&conn.label(), &msg);
        conn.outbox.send(ack.attr("error", "404").build());
        return;
    }
    conn.outbox.send(ack.build());

    // (target device, its <enc> nodes)
    let mut targets: Vec<(Jid, Vec<Node>)> = Vec::new();
    if let Some(participants) = child(&msg, "participants") {
        for t in children(participants) {
            if let Some(jid) = jid_attr(t, "jid") {
                targets.push((jid, children(t).to_vec()));
            }
        }
    } else {
        let encs: Vec<Node> = children(&msg).iter().filter(|c| c.tag == "enc").cloned().collect();
        if !encs.is_empty() {
            targets.push((to.clone(), encs));
        }
    }
    let extras: Vec<Node> = children(&msg).iter().filter(|c| c.tag == "device-identity").cloned().collect();

    let mut state = server.state();
    let Some(me) = state.registry.accounts.get(&phone) else { return };
    let (my_pn, my_lid) = (me.pn_jid(sender_device), me.lid_jid(sender_device));
    let notify = me.name.clone();
    for (target, encs) in targets {
        let Some(target_phone) = state.registry.phone_of(&target) else {
            tracing::debug!(%target, "message for an unknown user dropped");
            continue;
        };
        let lid_addressed = target.server == Server::Lid;
        let (from, alt_key, alt) = if lid_addressed {
            (my_lid.clone(), "sender_pn", my_pn.clone())
        } else {
            (my_pn.clone(), "sender_lid", my_lid.clone())
        };
        let mut b = NodeBuilder::new("message")
            .attr("from", from)
            .attr(alt_key, alt)
            .attr("id", id.as_str())
            .attr("t", now.as_str());
        for key in ["type", "edit", "category"] {
            if let Some(v) = attr(&msg, key) {
                b = b.attr(key, v);
            }
        }
        if let Some(name) = &notify {
            b = b.attr("notify", name.as_str());
        }
        if target_phone == phone {
            // A copy for one of the sender's own devices names the chat.
            b = b.attr("recipient", attr(&msg, "to").unwrap_or_default());
        }
        let content: Vec<Node> = encs.into_iter().chain(extras.iter().cloned()).collect();
        deliver(&mut state, &target_phone, target.device, b.children(content).build());
    }
}

pub(crate) fn receipt(server: &FakeServer, conn: &Conn, receipt: Node) {
    let Some((phone, device)) = sender(conn) else { return };
    let (Some(id), Some(to)) = (attr(&receipt, "id"), jid_attr(&receipt, "to")) else {
        server.state().record_unhandled(&conn.label(), &receipt);
        return;
    };
    let kind = attr(&receipt, "type");
    let mut ack =
        NodeBuilder::new("ack").attr("class", "receipt").attr("id", id.as_str()).attr("from", to.clone());
    if let Some(k) = &kind {
        ack = ack.attr("type", k.as_str());
    }
    conn.outbox.send(ack.build());

    let mut state = server.state();
    // whatsapp-rust acks a message it received with its delivery receipt
    // instead of an <ack>: any receipt means the device has it.
    let mut ids = vec![id.clone()];
    if let Some(list) = child(&receipt, "list") {
        ids.extend(children(list).iter().filter_map(|item| attr(item, "id")));
    }
    if let Some(dev) = state.registry.accounts.get_mut(&phone).and_then(|a| a.devices.get_mut(&device)) {
        for acked in &ids {
            dev.acked("message", acked, None);
        }
    }
    let (Some(me), Some(target_phone)) = (state.registry.accounts.get(&phone), state.registry.phone_of(&to))
    else {
        return;
    };
    let from = me.jid_like(&to, device);
    let target_devices: Vec<u16> = if to.device != 0 {
        vec![to.device]
    } else if target_phone == phone {
        // The own account's bare JID is its phone (peer messages).
        Vec::new()
    } else {
        state
            .registry
            .accounts
            .get(&target_phone)
            .map(|a| a.devices.keys().copied().collect())
            .unwrap_or_default()
    };
    let mut b = NodeBuilder::new("receipt")
        .attr("from", from)
        .attr("id", id.as_str())
        .attr("t", attr(&receipt, "t").unwrap_or_else(|| stanza::now_secs().to_string()));
    for key in ["type", "recipient", "participant"] {
        if let Some(v) = attr(&receipt, key) {
            b = b.attr(key, v);
        }
    }
    let node = match &receipt.content {
        Some(NodeContent::Nodes(ns)) => b.children(ns.clone()).build(),
        _ => b.build(),
    };
    for d in target_devices {
        if target_phone == phone && d == device {
            continue;
        }
        deliver(&mut state, &target_phone, d, node.clone());
    }
}

/// The device took a stanza: it leaves the queue and is not redelivered.
pub(crate) fn ack(server: &FakeServer, conn: &Conn, ack: &Node) {
    let Some((phone, device)) = sender(conn) else { return };
    let (Some(class), Some(id)) = (attr(ack, "class"), attr(ack, "id")) else { return };
    let kind = attr(ack, "type");
    let mut state = server.state();
    if let Some(dev) = state.registry.accounts.get_mut(&phone).and_then(|a| a.devices.get_mut(&device)) {
        dev.acked(&class, &id, kind.as_deref());
    }
}

/// A client announcing itself with its push name: kept as the account's
/// name and stamped as `notify` on what it sends.
pub(crate) fn presence(server: &FakeServer, conn: &Conn, presence: &Node) {
    let (Some((phone, _)), Some(name)) = (sender(conn), attr(presence, "name")) else { return };
    if let Some(account) = server.state().registry.accounts.get_mut(&phone) {
        account.name = Some(name);
    }
}
