//! Bulk campaigns: one message per recipient, created in one transaction, and the actions
//! that pause, resume or cancel those not sent yet.

use async_trait::async_trait;
use wagate_core::{
    Campaign, CampaignAction, CampaignId, CampaignState, Jid, Message, MessageContent, MessageId,
    MessageStatus, SessionId, Timestamp,
};

use crate::{Appended, StoreResult};

/// A campaign to create: one message per recipient, each already rendered.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub session_id: SessionId,
    pub name: String,
    pub template: Option<String>,
    /// The body as given, placeholders and all.
    pub content: MessageContent,
    pub scheduled_at: Option<Timestamp>,
    pub recipients: Vec<(Jid, MessageContent)>,
    /// How many recipients were left out.
    pub rejected: u64,
}

/// Filters for listing a campaign's messages, in recipient order.
#[derive(Debug, Clone)]
pub struct RecipientQuery {
    pub campaign_id: CampaignId,
    pub status: Option<MessageStatus>,
    pub after: Option<MessageId>,
    pub limit: u32,
}

/// Campaigns and their recipients.
#[async_trait]
pub trait Campaigns: Send + Sync {
    /// Creates a campaign with its messages (queued, or scheduled) in one transaction, with one
    /// `campaign.status` event rather than one event per message. `NotFound` without the session.
    async fn create_campaign(&self, new: NewCampaign, now: Timestamp) -> StoreResult<(Campaign, Appended)>;
    async fn get_campaign(&self, session: &SessionId, id: &CampaignId) -> StoreResult<Option<Campaign>>;
    /// A session's campaigns, newest first.
    async fn list_campaigns(&self, session: &SessionId) -> StoreResult<Vec<Campaign>>;
    /// Pauses, resumes or cancels a campaign. `Ok(Err(state))` when the action does not apply
    /// to the campaign's current state; `NotFound` without the campaign.
    async fn act_on_campaign(
        &self,
        session: &SessionId,
        id: &CampaignId,
        action: CampaignAction,
        now: Timestamp,
    ) -> StoreResult<Result<(Campaign, Appended), CampaignState>>;
    async fn list_campaign_recipients(&self, query: RecipientQuery) -> StoreResult<Vec<Message>>;
}
