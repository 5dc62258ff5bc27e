//! The changes the API asks for that append events. Each is committed, then published (and
//! its session woken) here, so that no handler has to remember to; handlers read the store
//! directly and write through these.

use std::sync::Arc;

use wagate_core::{
    Campaign, CampaignAction, CampaignId, CampaignState, Message, MessageId, NodeState, Session, SessionId,
    Signal,
};
use wagate_store::{NewCampaign, NewSession, StoreResult};

use super::Engine;

impl Engine {
    /// Creates a session (status `created`).
    pub(crate) async fn create_session(&self, new: NewSession) -> StoreResult<Session> {
        let (session, event) = self.store.create_session(new, self.now()).await?;
        self.publish([event]);
        Ok(session)
    }

    /// Creates a campaign and wakes its session to start sending it.
    pub(crate) async fn create_campaign(&self, new: NewCampaign) -> StoreResult<Campaign> {
        let session = new.session_id.clone();
        let (campaign, event) = self.store.create_campaign(new, self.now()).await?;
        self.publish([event]);
        self.wake(&session);
        Ok(campaign)
    }

    /// Pauses, resumes or cancels a campaign; `Ok(Err(state))` when the action does not apply
    /// to its state.
    pub(crate) async fn act_on_campaign(
        &self,
        session: &SessionId,
        id: &CampaignId,
        action: CampaignAction,
    ) -> StoreResult<Result<Campaign, CampaignState>> {
        let (campaign, event) = match self.store.act_on_campaign(session, id, action, self.now()).await? {
            Ok(changed) => changed,
            Err(state) => return Ok(Err(state)),
        };
        self.publish([event]);
        if action == CampaignAction::Resume {
            self.wake(session);
        }
        Ok(Ok(campaign))
    }

    /// Cancels a scheduled message.
    pub(crate) async fn cancel_scheduled(&self, id: &MessageId) -> StoreResult<Message> {
        let (message, event) = self.store.cancel_scheduled(id, self.now()).await?;
        self.publish([event]);
        Ok(message)
    }

    /// Marks a node draining; false when there is no such node. This node drains at once,
    /// another at its next heartbeat, which the signal brings forward.
    pub(crate) async fn drain_node(self: &Arc<Self>, node_id: &str) -> StoreResult<bool> {
        if !self.store.set_node_state(node_id, NodeState::Draining).await? {
            return Ok(false);
        }
        if node_id == self.node_id {
            self.drain().await;
        } else {
            self.store.signal(&[Signal::Beat]).await?;
        }
        Ok(true)
    }
}
