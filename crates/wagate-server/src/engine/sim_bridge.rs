//! The bridge between nodes' sim networks: a message from this node's sim network to a sim
//! number linked on another node is stored in that session's log, through the store.

use std::sync::{Arc, Weak};

use wagate_connect::InboundMessage;
use wagate_core::{ConnectorKind, PhoneNumber, Session};

use super::Engine;
use crate::group_commit::GroupCommit;

/// The sim sessions of every node, reached through the store.
pub(crate) struct SimsElsewhere {
    engine: Weak<Engine>,
    /// Which session each number is linked to, if any. Every send to a number not linked here
    /// asks (most are virtual contacts); the questions waiting at a moment share one query.
    lookups: GroupCommit<PhoneNumber, Option<Session>>,
}

impl SimsElsewhere {
    pub(crate) fn new(engine: &Arc<Engine>) -> Self {
        let weak = Arc::downgrade(engine);
        let lookups = GroupCommit::start(move |phones: Vec<PhoneNumber>| {
            let engine = weak.upgrade();
            async move {
                let Some(engine) = engine else { return Ok(vec![None; phones.len()]) };
                let numbers: Vec<&str> = phones.iter().map(PhoneNumber::as_str).collect();
                let linked = engine.store.find_linked_sessions(ConnectorKind::Sim, &numbers).await?;
                Ok(numbers
                    .iter()
                    .map(|number| linked.iter().find(|s| s.phone.as_deref() == Some(*number)).cloned())
                    .collect())
            }
        });
        Self { engine: Arc::downgrade(engine), lookups }
    }
}

#[async_trait::async_trait]
impl wagate_connect::sim::SimElsewhere for SimsElsewhere {
    async fn deliver(&self, to: &PhoneNumber, message: InboundMessage) -> bool {
        let session = match self.lookups.submit(vec![to.clone()]).await.map(|mut found| found.pop()) {
            Ok(Some(Some(session))) => session,
            Ok(_) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "could not look up a sim number");
                return false;
            }
        };
        let Some(engine) = self.engine.upgrade() else { return false };
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
