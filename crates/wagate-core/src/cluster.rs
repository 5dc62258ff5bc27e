//! What the nodes sharing one database tell each other: their states, the commands one asks
//! of a session another runs, and the signals that wake them. Each has one spelling, the one
//! stored in the database and sent between nodes; `Display` writes it and `FromStr` reads it.

use serde::Serialize;

use crate::SessionId;

/// A node's state, as stored in `nodes.state` and shown by the cluster API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema, strum::Display, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NodeState {
    /// Running and taking sessions.
    Active,
    /// Taking no sessions and handing its own over.
    Draining,
    /// No heartbeat within the lease TTL; its sessions move to other nodes. Never stored:
    /// the cluster reads it from the heartbeat's age.
    Dead,
}

/// What one node asks the node running a session to do with it, as stored in
/// `session_leases.command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::Display, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum RemoteCommand {
    /// Close the connection and stay offline.
    Disconnect,
    /// Unlink the device and forget its credentials.
    Logout,
}

/// A signal from one node to all the others (PostgreSQL `NOTIFY`): `wake {session id}`,
/// `deleted {session id}`, `beat` or `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Work was queued for this session: the node running it should look now.
    Wake(SessionId),
    /// Run a heartbeat now: a node was asked to drain, handed sessions over, or was asked to
    /// carry out a [`RemoteCommand`].
    Beat,
    /// Events were numbered: live subscribers can read them now.
    Events,
    /// This session was deleted: forget what is remembered of it (its organization).
    Deleted(SessionId),
}

/// A signal that is not one of [`Signal`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a signal: {0:?}")]
pub struct SignalError(pub String);

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signal::Wake(id) => write!(f, "wake {id}"),
            Signal::Beat => f.write_str("beat"),
            Signal::Events => f.write_str("events"),
            Signal::Deleted(id) => write!(f, "deleted {id}"),
        }
    }
}

impl std::str::FromStr for Signal {
    type Err = SignalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(' ') {
            None if s == "beat" => Ok(Signal::Beat),
            None if s == "events" => Ok(Signal::Events),
            Some(("wake", id)) => {
                SessionId::parse(id).map(Signal::Wake).map_err(|_| SignalError(s.to_owned()))
            }
            Some(("deleted", id)) => {
                SessionId::parse(id).map(Signal::Deleted).map_err(|_| SignalError(s.to_owned()))
            }
            _ => Err(SignalError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These spellings are in existing databases and between nodes of different versions.
    #[test]
    fn the_wire_spellings_stay() {
        for (state, text) in
            [(NodeState::Active, "active"), (NodeState::Draining, "draining"), (NodeState::Dead, "dead")]
        {
            assert_eq!(state.to_string(), text);
            assert_eq!(text.parse::<NodeState>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), text);
        }
        for (command, text) in [(RemoteCommand::Disconnect, "disconnect"), (RemoteCommand::Logout, "logout")]
        {
            assert_eq!(command.to_string(), text);
            assert_eq!(text.parse::<RemoteCommand>(), Ok(command));
        }
        let id = SessionId::parse("alice").unwrap();
        for (signal, text) in [
            (Signal::Wake(id.clone()), "wake alice"),
            (Signal::Deleted(id), "deleted alice"),
            (Signal::Beat, "beat"),
            (Signal::Events, "events"),
        ] {
            assert_eq!(signal.to_string(), text);
            assert_eq!(text.parse::<Signal>(), Ok(signal));
        }
        for wrong in ["", "wake", "wake ", "deleted ", "beat now", "sleep alice"] {
            assert!(wrong.parse::<Signal>().is_err(), "{wrong:?}");
        }
    }
}
