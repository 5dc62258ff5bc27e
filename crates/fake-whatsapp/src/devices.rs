//! `<notification type="devices">`: tells every other device that an
//! account's device list changed, so clients that cached it encrypt for the
//! new device (or stop encrypting for a removed one).

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node};

use crate::router::deliver;
use crate::server::State;
use crate::stanza;

#[derive(Clone, Copy)]
pub(crate) enum Change {
    Added,
    Removed,
}

/// Queues the notification for every device of every account but the one
/// that changed (the phone that linked it already knows).
pub(crate) fn announce(state: &mut State, phone: &str, device: u16, change: Change) {
    let Some(account) = state.registry.accounts.get(phone) else { return };
    let key_index = account.devices.get(&device).map(|d| d.key_index);
    let list = account.signed_key_index_list().unwrap_or_default();
    let now = stanza::now_secs().to_string();
    let mut dev =
        NodeBuilder::new("device").attr("jid", account.pn_jid(device)).attr("lid", account.lid_jid(device));
    if let (Change::Added, Some(k)) = (change, key_index) {
        dev = dev.attr("key-index", k.to_string());
    }
    let op = match change {
        Change::Added => "add",
        Change::Removed => "remove",
    };
    let node: Node = NodeBuilder::new("notification")
        .attr("from", Jid::pn(account.phone.as_str()))
        .attr("lid", Jid::lid(account.lid.as_str()))
        .attr("id", stanza::new_id())
        .attr("t", now.as_str())
        .attr("type", "devices")
        .children([NodeBuilder::new(op)
            .children([
                dev.build(),
                NodeBuilder::new("key-index-list").attr("ts", now.as_str()).bytes(list).build(),
            ])
            .build()])
        .build();
    let targets: Vec<(String, u16)> = state
        .registry
        .accounts
        .values()
        .flat_map(|a| a.devices.keys().map(move |d| (a.phone.clone(), *d)))
        .filter(|(p, d)| !(p == phone && *d == device))
        .collect();
    for (p, d) in targets {
        deliver(state, &p, d, node.clone());
    }
}
