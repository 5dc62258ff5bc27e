//! Answers to the IQs a logged-in client sends: passive/active, prekeys,
//! device lists, props, blocklist, privacy, app state, keepalive, logout.
//! Anything else gets an empty result and is recorded as unhandled.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, NodeContent};

use crate::conn::{Conn, Peer};
use crate::server::FakeServer;
use crate::stanza::{self, attr, child, children, iq_error, iq_result, leaf};

pub(crate) fn handle(server: &FakeServer, conn: &Conn, iq: Node) {
    let id = attr(&iq, "id").unwrap_or_default();
    match attr(&iq, "type").as_deref() {
        Some("result") => {
            crate::pairing::on_result(server, conn, &iq);
            return;
        }
        Some("error") => {
            server.state().record_unhandled(&conn.label(), &iq);
            return;
        }
        _ => {}
    }
    let xmlns = attr(&iq, "xmlns").unwrap_or_default();
    let first = children(&iq).first().map(|c| c.tag.to_string()).unwrap_or_default();
    let reply = match (xmlns.as_str(), first.as_str()) {
        ("w:p", _) | ("urn:xmpp:ping", _) => iq_result(&id, vec![]),
        ("passive", "active") => {
            conn.outbox.send(iq_result(&id, vec![]));
            if let Peer::Device { phone, device } = &conn.peer {
                crate::login::activate(server, conn, phone, *device);
            }
            return;
        }
        ("passive", _) => iq_result(&id, vec![]),
        ("encrypt", _) => crate::prekeys::handle(server, conn, &iq, &id),
        ("usync", _) => usync(server, &iq, &id),
        ("abt", "props") => {
            iq_result(&id, vec![NodeBuilder::new("props").attr("protocol", "1").attr("hash", "fake").build()])
        }
        ("blocklist", _) if attr(&iq, "type").as_deref() == Some("get") => iq_result(&id, vec![leaf("list")]),
        ("privacy", _) if attr(&iq, "type").as_deref() == Some("get") => iq_result(&id, vec![privacy()]),
        // Trusted-contact tokens: accepted, never required (no 463 nacks).
        ("privacy", "tokens") => iq_result(&id, vec![]),
        ("w:sync:app:state", "sync") => app_state(&iq, &id),
        ("md", "link_code_companion_reg") => crate::pair_code::handle(server, conn, &iq, &id),
        ("md", "remove-companion-device") => {
            remove_companion(server, conn, &iq);
            iq_result(&id, vec![])
        }
        ("w:m", "media_conn") => crate::media::media_conn(server, &id),
        _ => {
            server.state().record_unhandled(&conn.label(), &iq);
            iq_result(&id, vec![])
        }
    };
    conn.outbox.send(reply);
}

fn privacy() -> Node {
    let categories = [
        ("readreceipts", "all"),
        ("last", "all"),
        ("online", "all"),
        ("profile", "all"),
        ("status", "contacts"),
        ("groupadd", "all"),
        ("calladd", "all"),
    ];
    NodeBuilder::new("privacy")
        .children(categories.iter().map(|(name, value)| {
            NodeBuilder::new("category").attr("name", *name).attr("value", *value).build()
        }))
        .build()
}

/// Every collection at version 0 with nothing in it: no keys are needed to
/// "apply" that, so the client counts it as synced.
fn app_state(iq: &Node, id: &str) -> Node {
    let collections = child(iq, "sync").map(children).unwrap_or_default().iter().filter_map(|c| {
        let name = attr(c, "name")?;
        Some(NodeBuilder::new("collection").attr("name", name).attr("version", "0").build())
    });
    iq_result(id, vec![NodeBuilder::new("sync").children(collections).build()])
}

/// The user a usync `<user>` names: by `jid`, or (a number check) by the phone number in its
/// `<contact>`.
fn usync_user(user: &Node) -> Option<Jid> {
    if let Some(jid) = stanza::jid_attr(user, "jid") {
        return Some(jid);
    }
    let phone = match &child(user, "contact")?.content {
        Some(NodeContent::String(phone)) => phone.to_string(),
        Some(NodeContent::Bytes(phone)) => String::from_utf8(phone.clone()).ok()?,
        _ => return None,
    };
    let digits = phone.trim_start_matches('+');
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| Jid::pn(digits))
}

/// Device lists (with each user's LID) for the users asked about. Unknown
/// users come back with only device 0, like a phone with no companions.
fn usync(server: &FakeServer, iq: &Node, id: &str) -> Node {
    let Some(query) = child(iq, "usync") else { return iq_error(id, 400, "bad-request") };
    let asked: Vec<&str> =
        child(query, "query").map(children).unwrap_or_default().iter().map(|c| c.tag.as_ref()).collect();
    let users = child(query, "list").map(children).unwrap_or_default();
    let state = server.state();
    let mut out = Vec::new();
    for user in users {
        let Some(jid) = usync_user(user) else { continue };
        let mut protocols = Vec::new();
        let account = state.registry.account_of(&jid);
        if asked.contains(&"devices") {
            let devices: Vec<Node> = match account {
                Some(a) => std::iter::once(NodeBuilder::new("device").attr("id", "0").build())
                    .chain(a.devices.values().map(|d| {
                        NodeBuilder::new("device")
                            .attr("id", d.id.to_string())
                            .attr("key-index", d.key_index.to_string())
                            .build()
                    }))
                    .collect(),
                None => vec![NodeBuilder::new("device").attr("id", "0").build()],
            };
            let mut content = vec![NodeBuilder::new("device-list").children(devices).build()];
            if let Some(list) =
                account.filter(|a| !a.devices.is_empty()).and_then(|a| a.signed_key_index_list().ok())
            {
                content.push(
                    NodeBuilder::new("key-index-list")
                        .attr("ts", stanza::now_secs().to_string())
                        .bytes(list)
                        .build(),
                );
            }
            protocols.push(NodeBuilder::new("devices").children(content).build());
        }
        if asked.contains(&"lid") {
            if let Some(a) = account {
                protocols.push(NodeBuilder::new("lid").attr("val", Jid::lid(a.lid.as_str())).build());
            }
        }
        if asked.contains(&"contact") {
            let kind = if account.is_some() { "in" } else { "out" };
            protocols.push(NodeBuilder::new("contact").attr("type", kind).build());
        }
        out.push(NodeBuilder::new("user").attr("jid", jid.to_non_ad()).children(protocols).build());
    }
    let mut usync = NodeBuilder::new("usync");
    for key in ["sid", "mode", "context", "index"] {
        if let Some(v) = attr(query, key) {
            usync = usync.attr(key, v);
        }
    }
    iq_result(
        id,
        vec![usync
            .children([NodeBuilder::new("result").build(), NodeBuilder::new("list").children(out).build()])
            .build()],
    )
}

/// The client logs itself out: forget the device (its socket closes next).
fn remove_companion(server: &FakeServer, conn: &Conn, iq: &Node) {
    let Some(target) = child(iq, "remove-companion-device").and_then(|n| stanza::jid_attr(n, "jid")) else {
        return;
    };
    let mut state = server.state();
    let Some(account) = state.registry.account_of_mut(&target) else { return };
    let allowed = matches!(&conn.peer, Peer::Device { phone, .. } if *phone == account.phone);
    if allowed && target.device != 0 {
        let phone = account.phone.clone();
        // Announced while the device is still listed, then dropped.
        crate::devices::announce(&mut state, &phone, target.device, crate::devices::Change::Removed);
        if let Some(a) = state.registry.accounts.get_mut(&phone) {
            a.devices.remove(&target.device);
        }
        tracing::info!(jid = %target, "companion logged out");
    }
}
