//! What happens after the handshake: an unlinked companion gets QR refs, a
//! linked device is checked and logged in (or refused with `<failure>`), and
//! its `<active/>` releases the offline queue.

use anyhow::{Context, Result};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;
use waproto::whatsapp as wa;

use crate::accounts::{Block, Registration, SignedPreKey};
use crate::conn::{Conn, Peer};
use crate::noise::Pattern;
use crate::server::{FakeServer, Online, Outbox, Pending};
use crate::stanza::{self, SERVER};

pub(crate) fn admit(
    server: &FakeServer,
    outbox: &Outbox,
    payload: &wa::ClientPayload,
    client_static: [u8; 32],
    pattern: Pattern,
) -> Peer {
    if let Some(reg) = payload.device_pairing_data.as_option() {
        return match registration(reg, client_static, payload.push_name.clone()) {
            Ok(registration) => start_pairing(server, outbox, registration),
            Err(e) => {
                tracing::warn!(error = %e, "unusable device_pairing_data");
                refuse(outbox, failure("400", &[]))
            }
        };
    }
    let (Some(user), Some(device)) = (payload.username, payload.device) else {
        return refuse(outbox, failure("400", &[]));
    };
    login(server, outbox, &user.to_string(), device as u16, client_static, pattern)
}

fn registration(
    reg: &wa::client_payload::DevicePairingRegistrationData,
    noise_key: [u8; 32],
    push_name: Option<String>,
) -> Result<Registration> {
    let regid: [u8; 4] = reg.e_regid.as_deref().unwrap_or_default().try_into().context("e_regid")?;
    let skey_id = reg.e_skey_id.as_deref().unwrap_or_default();
    let skey_id = skey_id.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b));
    Ok(Registration {
        noise_key,
        identity: reg.e_ident.clone().context("e_ident")?,
        registration_id: u32::from_be_bytes(regid),
        signed_prekey: SignedPreKey {
            id: skey_id,
            public: reg.e_skey_val.clone().context("e_skey_val")?,
            signature: reg.e_skey_sig.clone().context("e_skey_sig")?,
        },
        push_name: push_name.filter(|n| !n.is_empty()),
    })
}

fn start_pairing(server: &FakeServer, outbox: &Outbox, registration: Registration) -> Peer {
    let refs: Vec<String> =
        (0..server.inner.config.qr_refs).map(|_| format!("2@{}", stanza::new_id())).collect();
    {
        let mut state = server.state();
        for r in &refs {
            state.refs.insert(r.clone(), outbox.id);
        }
        state.pending.insert(outbox.id, Pending { outbox: outbox.clone(), registration });
    }
    let ref_nodes = refs.into_iter().map(|r| stanza::bytes_node("ref", r.into_bytes()));
    outbox.send(
        NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "set")
            .attr("id", stanza::new_id())
            .attr("xmlns", "md")
            .children([NodeBuilder::new("pair-device").children(ref_nodes).build()])
            .build(),
    );
    Peer::Pairing
}

pub(crate) fn failure(reason: &str, extra: &[(&'static str, String)]) -> Node {
    let mut b = NodeBuilder::new("failure").attr("reason", reason);
    for (k, v) in extra {
        b = b.attr(k, v.as_str());
    }
    b.build()
}

fn refuse(outbox: &Outbox, failure: Node) -> Peer {
    outbox.send(failure);
    outbox.close();
    Peer::Refused
}

fn login(
    server: &FakeServer,
    outbox: &Outbox,
    phone: &str,
    device: u16,
    client_static: [u8; 32],
    pattern: Pattern,
) -> Peer {
    let mut state = server.state();
    let Some(account) = state.registry.accounts.get_mut(phone) else {
        return refuse(outbox, failure("401", &[]));
    };
    match &account.block {
        Some(Block::Banned { until }) if *until > stanza::now_secs() => {
            let left = (until - stanza::now_secs()).to_string();
            return refuse(outbox, failure("402", &[("code", "101".into()), ("expire", left)]));
        }
        Some(Block::Outdated) => return refuse(outbox, failure("405", &[])),
        _ => {}
    }
    let lid = account.lid_jid(device);
    let Some(dev) = account.devices.get_mut(&device) else {
        return refuse(outbox, failure("401", &[]));
    };
    if dev.noise_key != client_static {
        tracing::info!(phone, device, "login with a noise key that is not the registered one");
        return refuse(outbox, failure("401", &[]));
    }
    dev.last_pattern = Some(pattern);
    dev.logins += 1;
    let key = (phone.to_owned(), device);
    if let Some(old) = state.online.insert(key, Online { outbox: outbox.clone(), active: false }) {
        old.outbox.send(
            NodeBuilder::new("stream:error")
                .children([NodeBuilder::new("conflict").attr("type", "replaced").build()])
                .build(),
        );
        old.outbox.close();
    }
    outbox.send(
        NodeBuilder::new("success")
            .attr("t", stanza::now_secs().to_string())
            .attr("lid", lid)
            .attr("props", "1")
            .attr("location", "fake")
            .build(),
    );
    Peer::Device { phone: phone.to_owned(), device }
}

/// The client left passive mode: push what waited for it, then say the
/// offline backlog is over (the client's `Connected` waits for that).
pub(crate) fn activate(server: &FakeServer, conn: &Conn, phone: &str, device: u16) {
    let mut state = server.state();
    let backlog: Vec<Node> = state
        .registry
        .accounts
        .get(phone)
        .and_then(|a| a.devices.get(&device))
        .map(|d| d.queue.iter().map(|q| q.node.clone()).collect())
        .unwrap_or_default();
    if let Some(online) = state.online.get_mut(&(phone.to_owned(), device)) {
        if online.outbox.id == conn.outbox.id {
            online.active = true;
        }
    }
    let count = backlog.len();
    for mut node in backlog {
        node.attrs.insert("offline", "1");
        conn.outbox.send(node);
    }
    conn.outbox.send(
        NodeBuilder::new("ib")
            .children([NodeBuilder::new("offline").attr("count", count.to_string()).build()])
            .build(),
    );
}

/// The socket closed: forget the connection unless a newer one replaced it.
pub(crate) fn gone(server: &FakeServer, conn: &Conn) {
    let mut state = server.state();
    match &conn.peer {
        Peer::Device { phone, device } => {
            let key = (phone.clone(), *device);
            if state.online.get(&key).is_some_and(|o| o.outbox.id == conn.outbox.id) {
                state.online.remove(&key);
            }
        }
        Peer::Pairing => {
            state.pending.remove(&conn.outbox.id);
            state.refs.retain(|_, id| *id != conn.outbox.id);
            state.code_requests.retain(|_, r| r.conn != conn.outbox.id);
        }
        Peer::Refused => {}
    }
}
