//! Messages: outbound ones accepted into the outbox, claimed and sent, their statuses and
//! history; inbound ones stored once; and reading them back.

use async_trait::async_trait;
use wagate_core::{
    Direction, Jid, Message, MessageContent, MessageId, MessageStatus, OrgId, ReplyContext, Sender,
    SessionId, Timestamp,
};

use crate::{Appended, StoreResult};

/// An outbound message to accept.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    pub session_id: SessionId,
    /// The organization the sender takes the session to belong to: a session of another
    /// organization is not found (the sender's knowledge may be out of date).
    pub org_id: OrgId,
    pub to: Jid,
    pub content: MessageContent,
    pub idempotency_key: Option<String>,
    /// Send at this time (the message is `scheduled` until then) rather than at once.
    pub scheduled_at: Option<Timestamp>,
    /// The message it replies to.
    pub context: Option<ReplyContext>,
    /// JIDs it mentions.
    pub mentions: Vec<String>,
}

/// The answer to accepting one outbound message.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message: Message,
    /// False when the idempotency key matched an earlier message, which is returned instead.
    pub created: bool,
    pub event: Option<Appended>,
}

/// An inbound message to store.
#[derive(Debug, Clone)]
pub struct NewInbound {
    pub session_id: SessionId,
    pub wa_id: String,
    pub chat: String,
    pub from: String,
    pub to: String,
    pub content: MessageContent,
    pub at: Timestamp,
    /// WhatsApp's id of the message it replies to.
    pub reply_to: Option<String>,
    pub mentions: Vec<String>,
    /// The author's LID and profile name, where known.
    pub sender: Option<Sender>,
}

/// Which message a status update is about.
#[derive(Debug, Clone)]
pub enum MessageRef {
    Id(MessageId),
    /// An outbound message of this session, by WhatsApp's id (receipts).
    WaId(SessionId, String),
}

/// A status to apply to an outbound message.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub message: MessageRef,
    pub status: MessageStatus,
    pub reason: Option<String>,
    /// WhatsApp's id, learnt when the message is sent.
    pub wa_id: Option<String>,
    /// With `status = queued`: when to try again.
    pub retry_at: Option<Timestamp>,
}

/// Filters for listing a session's messages, newest first.
#[derive(Debug, Clone)]
pub struct MessageQuery {
    pub session_id: SessionId,
    pub chat: Option<String>,
    pub direction: Option<Direction>,
    pub before: Option<MessageId>,
    pub limit: u32,
}

/// A session asking for its due messages.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub session_id: SessionId,
    /// The claiming node's lease token: nothing is claimed once another node holds the session.
    pub lease: i64,
    pub limit: u32,
    /// Pacing caps reached: queued messages they cover wait until then (applied before claiming).
    pub defer: Vec<Deferral>,
}

/// Queued messages of a session that must not be sent before `until`: all of them, or those
/// to one recipient.
#[derive(Debug, Clone)]
pub struct Deferral {
    pub recipient: Option<String>,
    pub until: Timestamp,
}

/// An outbound message claimed for sending.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub message: Message,
    /// How many times a send was tried before this one.
    pub attempts: u32,
}

/// The answer to one [`ClaimRequest`].
#[derive(Debug, Clone, Default)]
pub struct Claim {
    /// In queue order: direct sends, then campaign messages, each in the order they fell due
    /// (when accepted, at their scheduled time, or at their retry), then oldest first.
    pub messages: Vec<Claimed>,
    /// The `message.status` events the claim appended.
    pub events: Vec<Appended>,
    /// When the session's next message not claimed here can be claimed: the claim's own time
    /// when it took its whole limit (more may be due), None when nothing else waits.
    pub next_due: Option<Timestamp>,
}

/// Outbound writes committed together (`Messages::write_outbound`).
#[derive(Debug, Clone, Default)]
pub struct OutboundWrites {
    pub accepts: Vec<NewOutbound>,
    pub statuses: Vec<StatusUpdate>,
    pub claims: Vec<ClaimRequest>,
}

/// The answers to `OutboundWrites`: one per input of each kind, in order (as
/// `accept_outbound`, `apply_statuses` and `claim_outbound` answer them).
#[derive(Debug, Default)]
pub struct OutboundWritten {
    pub accepted: Vec<StoreResult<Accepted>>,
    pub statuses: Vec<StoreResult<Vec<Appended>>>,
    pub claimed: Vec<Claim>,
}

/// Messages, and the outbox they wait in while `queued` (a state of the message, not a place).
/// Writes append their `message.status` or `message.received`
/// events in the same transaction and return them.
#[async_trait]
pub trait Messages: Send + Sync {
    /// Commits the outbound writes of a moment in one transaction: accepts, then status
    /// changes, then claims (claimed messages leased until `lease_until`). One transaction for
    /// all three is what lets SQLite's single writer commit a flow of sends in few
    /// transactions ([`Messages::one_writer`]). A failure of the transaction fails them all;
    /// an illegal transition fails only its own update.
    async fn write_outbound(
        &self,
        writes: OutboundWrites,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<OutboundWritten>;
    /// Accepts outbound messages in one transaction: each becomes `queued` (due now, or at its
    /// scheduled time) with a `message.status` event. One result per input, in order.
    async fn accept_outbound(
        &self,
        batch: Vec<NewOutbound>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Accepted>>> {
        let writes = OutboundWrites { accepts: batch, ..OutboundWrites::default() };
        Ok(self.write_outbound(writes, now, now).await?.accepted)
    }
    /// Claims due messages of several sessions in one transaction: for each request up to
    /// `limit` of that session's due messages, in queue order, marked `sending` and leased until
    /// `lease_until`. One answer per request, in order.
    async fn claim_outbound(
        &self,
        requests: Vec<ClaimRequest>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<Claim>> {
        let writes = OutboundWrites { claims: requests, ..OutboundWrites::default() };
        Ok(self.write_outbound(writes, now, lease_until).await?.claimed)
    }
    /// Applies status updates in one transaction. Unknown messages and stale receipts are
    /// skipped; an illegal transition fails only its own update.
    /// Each answer holds the update's `message.status` event (none when skipped) and the
    /// `campaign.status` event of a campaign it completed.
    async fn apply_statuses(
        &self,
        updates: Vec<StatusUpdate>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Vec<Appended>>>> {
        let writes = OutboundWrites { statuses: updates, ..OutboundWrites::default() };
        Ok(self.write_outbound(writes, now, now).await?.statuses)
    }
    /// Whether write transactions run one at a time (SQLite's single writer), so that the
    /// outbox gains by committing accepts, status changes and claims together; where they run
    /// side by side (PostgreSQL), accepts are better committed by a writer of their own.
    fn one_writer(&self) -> bool;
    /// The recipient and time of each message of a session sent since `since`, oldest first.
    async fn sent_since(
        &self,
        session_id: &SessionId,
        since: Timestamp,
    ) -> StoreResult<Vec<(String, Timestamp)>>;
    /// Stores inbound messages, skipping ones already stored (same session and WhatsApp id).
    /// Returns the `message.received` events of the new ones.
    async fn store_inbound(&self, batch: Vec<NewInbound>, now: Timestamp) -> StoreResult<Vec<Appended>>;
    /// Cancels a message that is still `scheduled`: it goes `canceled` and leaves the queue.
    /// `IllegalTransition` when it is past that.
    async fn cancel_scheduled(&self, id: &MessageId, now: Timestamp) -> StoreResult<(Message, Appended)>;
    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>>;
    async fn list_messages(&self, query: MessageQuery) -> StoreResult<Vec<Message>>;
}
