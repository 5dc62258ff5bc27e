//! What the "phone" or the network does to an account's companions: unlink
//! them, ban the account for a while, declare the client outdated, or drop
//! the connection.

use anyhow::{anyhow, Result};
use wacore_binary::builder::NodeBuilder;

use crate::accounts::Block;
use crate::login::failure;
use crate::server::FakeServer;
use crate::stanza;

fn online_outboxes(server: &FakeServer, phone: &str) -> Vec<crate::server::Outbox> {
    server.state().online.iter().filter(|((p, _), _)| p == phone).map(|(_, o)| o.outbox.clone()).collect()
}

fn known(server: &FakeServer, phone: &str) -> Result<()> {
    if server.state().registry.accounts.contains_key(phone) {
        Ok(())
    } else {
        Err(anyhow!("no account {phone}"))
    }
}

/// The phone removes every linked companion. Online ones are told at once;
/// offline ones are refused (401) at their next login.
pub fn unlink(server: &FakeServer, phone: &str) -> Result<usize> {
    known(server, phone)?;
    for outbox in online_outboxes(server, phone) {
        outbox.send(
            NodeBuilder::new("stream:error")
                .children([NodeBuilder::new("conflict").attr("type", "device_removed").build()])
                .build(),
        );
        outbox.close();
    }
    let mut state = server.state();
    let ids: Vec<u16> =
        state.registry.accounts.get(phone).map(|a| a.devices.keys().copied().collect()).unwrap_or_default();
    for id in &ids {
        crate::devices::announce(&mut state, phone, *id, crate::devices::Change::Removed);
    }
    if let Some(account) = state.registry.accounts.get_mut(phone) {
        account.devices.clear();
    }
    Ok(ids.len())
}

/// A temporary ban: online companions get the 402 failure now, and every
/// login is refused with it until it expires.
pub fn ban(server: &FakeServer, phone: &str, seconds: u64) -> Result<()> {
    known(server, phone)?;
    if let Some(a) = server.state().registry.accounts.get_mut(phone) {
        a.block = Some(Block::Banned { until: stanza::now_secs() + seconds });
    }
    for outbox in online_outboxes(server, phone) {
        outbox.send(failure("402", &[("code", "101".into()), ("expire", seconds.to_string())]));
        outbox.close();
    }
    Ok(())
}

/// The server no longer accepts this client version (405) until cleared.
pub fn outdated(server: &FakeServer, phone: &str) -> Result<()> {
    known(server, phone)?;
    if let Some(a) = server.state().registry.accounts.get_mut(phone) {
        a.block = Some(Block::Outdated);
    }
    for outbox in online_outboxes(server, phone) {
        outbox.send(failure("405", &[]));
        outbox.close();
    }
    Ok(())
}

/// Lifts a ban or the outdated verdict.
pub fn clear(server: &FakeServer, phone: &str) -> Result<()> {
    known(server, phone)?;
    if let Some(a) = server.state().registry.accounts.get_mut(phone) {
        a.block = None;
    }
    Ok(())
}

/// Closes the companions' sockets without a word, like a network drop.
pub fn drop_connections(server: &FakeServer, phone: &str) -> Result<usize> {
    known(server, phone)?;
    let outboxes = online_outboxes(server, phone);
    for outbox in &outboxes {
        outbox.close();
    }
    Ok(outboxes.len())
}
