//! The bridge between nodes' sim networks: a message from this node's sim network to a sim
//! number linked on another node is stored in that session's log, through the store.

use std::sync::{Arc, Weak};

use wagate_connect::InboundMessage;
use wagate_core::{ConnectorKind, PhoneNumber};

use super::Engine;

/// The sim sessions of every node, reached through the store.
pub(crate) struct SimsElsewhere {
    engine: Weak<Engine>,
}

impl SimsElsewhere {
    pub(crate) fn new(engine: &Arc<Engine>) -> Self {
        Self { engine: Arc::downgrade(engine) }
    }
}

#[async_trait::async_trait]
impl wagate_connect::sim::SimElsewhere for SimsElsewhere {
    async fn deliver(&self, to: &PhoneNumber, message: InboundMessage) -> bool {
        let Some(engine) = self.engine.upgrade() else { return false };
        let session = match engine.store.find_linked_session(ConnectorKind::Sim, to.as_str()).await {
            Ok(Some(session)) => session,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "could not look up a sim number");
                return false;
            }
        };
        match engine.store.store_inbound(vec![super::new_inbound(&session, message)], engine.now()).await {
            Ok(events) => {
                engine.publish(events);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, session_id = %session.id, "could not store a sim message");
                false
            }
        }
    }
}
