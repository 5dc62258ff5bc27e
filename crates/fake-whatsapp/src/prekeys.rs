//! The `encrypt` namespace: prekey count, upload, signed-prekey rotation,
//! digest, and bundle fetches (one one-time prekey popped per fetch).

use wacore::iq::prekeys::{OneTimePreKeyNode, PreKeyBundleUserNode, SignedPreKeyNode};
use wacore::protocol::ProtocolNode;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node};

use crate::accounts::SignedPreKey;
use crate::conn::{Conn, Peer};
use crate::server::FakeServer;
use crate::stanza::{self, attr, child, child_bytes, children, iq_error, iq_result};

pub(crate) fn handle(server: &FakeServer, conn: &Conn, iq: &Node, id: &str) -> Node {
    let kind = attr(iq, "type").unwrap_or_default();
    if kind == "get" {
        if let Some(keys) = child(iq, "key") {
            return fetch(server, keys, id);
        }
        if child(iq, "count").is_some() {
            let count = own_device(server, conn, |d| d.prekeys.len()).unwrap_or(0);
            return iq_result(id, vec![NodeBuilder::new("count").attr("value", count.to_string()).build()]);
        }
        if child(iq, "digest").is_some() {
            // The client skips digest validation on an empty answer.
            return iq_result(id, vec![]);
        }
    } else if kind == "set" {
        if let Some(rotate) = child(iq, "rotate") {
            if let Some(skey) = child(rotate, "skey").and_then(signed_prekey) {
                own_device(server, conn, |d| d.signed_prekey = skey);
            }
            return iq_result(id, vec![]);
        }
        if child(iq, "list").is_some() {
            upload(server, conn, iq);
            return iq_result(id, vec![]);
        }
    }
    server.state().record_unhandled(&conn.label(), iq);
    iq_result(id, vec![])
}

fn own_device<T>(
    server: &FakeServer,
    conn: &Conn,
    f: impl FnOnce(&mut crate::accounts::Device) -> T,
) -> Option<T> {
    let Peer::Device { phone, device } = &conn.peer else { return None };
    let mut state = server.state();
    let dev = state.registry.accounts.get_mut(phone)?.devices.get_mut(device)?;
    Some(f(dev))
}

fn signed_prekey(node: &Node) -> Option<SignedPreKey> {
    let parsed = SignedPreKeyNode::try_from_node(node).ok()?;
    Some(SignedPreKey { id: parsed.id, public: parsed.public_bytes, signature: parsed.signature })
}

fn upload(server: &FakeServer, conn: &Conn, iq: &Node) {
    let keys: Vec<(u32, Vec<u8>)> = child(iq, "list")
        .map(children)
        .unwrap_or_default()
        .iter()
        .filter_map(|k| OneTimePreKeyNode::try_from_node(k).ok())
        .map(|k| (k.id, k.public_bytes))
        .collect();
    let skey = child(iq, "skey").and_then(signed_prekey);
    let registration =
        child_bytes(iq, "registration").and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes);
    let share = own_device(server, conn, |d| {
        // A re-upload after a wipe replaces the pool, like the real server.
        d.prekeys = keys.into();
        if let Some(skey) = skey {
            d.signed_prekey = skey;
        }
        if let Some(reg) = registration {
            d.registration_id = reg;
        }
        std::mem::take(&mut d.key_share_pending)
    });
    if let (Some(true), Peer::Device { phone, device }) = (share, &conn.peer) {
        let (server, phone, device) = (server.clone(), phone.clone(), *device);
        tokio::spawn(async move {
            if let Err(e) = crate::phone::share_app_state_key(&server, &phone, device).await {
                tracing::warn!(error = %e, phone, device, "the phone could not share an app-state key");
            }
        });
    }
}

fn fetch(server: &FakeServer, keys: &Node, id: &str) -> Node {
    let mut state = server.state();
    let mut users = Vec::new();
    for user in children(keys) {
        let Some(jid) = stanza::jid_attr(user, "jid") else { continue };
        let Some(account) = state.registry.account_of_mut(&jid) else {
            users.push(missing(jid));
            continue;
        };
        let node = if jid.device == 0 {
            let phone = &account.phone_keys;
            PreKeyBundleUserNode {
                jid: jid.clone(),
                registration_id: phone.registration_id,
                identity_key: phone.identity_public(),
                signed_pre_key: SignedPreKeyNode::new(
                    phone.signed_prekey.id,
                    phone.signed_prekey.public.clone(),
                    phone.signed_prekey.signature.clone(),
                ),
                one_time_pre_key: None,
                device_identity: None,
            }
        } else if let Some(dev) = account.devices.get_mut(&jid.device) {
            let one_time = dev.prekeys.pop_front().map(|(id, key)| OneTimePreKeyNode::new(id, key));
            PreKeyBundleUserNode {
                jid: jid.clone(),
                registration_id: dev.registration_id,
                identity_key: dev.identity.clone(),
                signed_pre_key: SignedPreKeyNode::new(
                    dev.signed_prekey.id,
                    dev.signed_prekey.public.clone(),
                    dev.signed_prekey.signature.clone(),
                ),
                one_time_pre_key: one_time,
                device_identity: Some(dev.device_identity.clone()),
            }
        } else {
            users.push(missing(jid));
            continue;
        };
        users.push(node.into_node());
    }
    if users.is_empty() {
        return iq_error(id, 404, "item-not-found");
    }
    iq_result(id, vec![NodeBuilder::new("list").children(users).build()])
}

/// A device that is not (or no longer) there.
fn missing(jid: Jid) -> Node {
    NodeBuilder::new("user")
        .attr("jid", jid)
        .children([NodeBuilder::new("error").attr("code", "404").attr("text", "item-not-found").build()])
        .build()
}
