//! The [`Store`] trait over the SQL modules, shared by both backends (included by each, with
//! its own `Backend` store type and `Db` database).

use async_trait::async_trait;
use sqlx::Connection;
use wagate_core::{
    Campaign, CampaignAction, CampaignId, CampaignState, Chat, ConnectorKind, Contact, Delivery, DeliveryId,
    Event, EventData, EventId, Hook, HookId, Media, MediaId, Message, MessageContent, MessageId, Session,
    SessionId, Template, Timestamp, Webhook, WebhookId,
};

use super::{
    begin, campaigns, cluster, contacts, device_keys, events, from_millis, media, messages, sessions,
    templates, webhooks, Backend,
};
use crate::{
    Accepted, AttemptRecord, ClaimRequest, Claimed, ClaimedDelivery, DeliveryQuery, DeliverySlots, DeviceKey,
    DeviceKeys, EventBound, EventQuery, Heartbeat, Lease, LeaseGrant, MessageQuery, NewCampaign, NewHook,
    NewInbound, NewOutbound, NewSession, NewWebhook, Node, NodeInfo, NotReady, RecipientQuery, Replayed,
    SessionChange, Stats, StatusUpdate, Store, StoreResult, TemplateChange, WebhookChange,
};

#[async_trait]
impl Store for Backend {
    async fn ready(&self) -> Result<(), NotReady> {
        self.check_ready().await
    }

    async fn close(&self) {
        // The backend's own `close` (inherent methods come first).
        Backend::close(self).await;
    }

    async fn heartbeat(&self, node: &NodeInfo, now: Timestamp, until: Timestamp) -> StoreResult<Heartbeat> {
        cluster::heartbeat(&mut *self.writer().await?, node, now, until).await
    }

    async fn acquire_sessions(
        &self,
        node_id: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
        restarted: bool,
        only: Option<&SessionId>,
    ) -> StoreResult<Vec<(Session, Lease)>> {
        cluster::acquire(&mut *self.writer().await?, node_id, now, until, limit, restarted, only).await
    }

    async fn release_sessions(&self, node_id: &str, leases: &[Lease]) -> StoreResult<()> {
        cluster::release(&mut *self.writer().await?, node_id, leases).await
    }

    async fn list_nodes(&self, dead_before: Timestamp) -> StoreResult<Vec<Node>> {
        cluster::list_nodes(self.readers(), dead_before).await
    }

    async fn cluster_load(&self, live_since: Timestamp) -> StoreResult<(u64, u64)> {
        cluster::load(self.readers(), live_since).await
    }

    async fn set_node_state(&self, node_id: &str, state: &str) -> StoreResult<bool> {
        cluster::set_state(&mut *self.writer().await?, node_id, state).await
    }

    async fn request_command(
        &self,
        session_id: &SessionId,
        command: &str,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        cluster::request_command(&mut *self.writer().await?, session_id, command, now).await
    }

    async fn signal(&self, message: &str) -> StoreResult<()> {
        self.send_signal(message).await
    }

    async fn listen(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<String>>> {
        self.signals().await
    }

    async fn lease_history(&self, session_id: &SessionId) -> StoreResult<Vec<LeaseGrant>> {
        cluster::history(self.readers(), session_id).await
    }

    async fn find_linked_session(
        &self,
        connector: ConnectorKind,
        phone: &str,
    ) -> StoreResult<Option<Session>> {
        sessions::find_linked(self.readers(), connector, phone).await
    }

    async fn create_session(&self, new: NewSession, now: Timestamp) -> StoreResult<(Session, Event)> {
        sessions::create(&mut *self.writer().await?, new, now).await
    }

    async fn get_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        sessions::get(self.readers(), id).await
    }

    async fn list_sessions(&self) -> StoreResult<Vec<Session>> {
        sessions::list(self.readers()).await
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool> {
        sessions::delete(&mut *self.writer().await?, id).await
    }

    async fn update_session(
        &self,
        id: &SessionId,
        change: SessionChange,
        now: Timestamp,
    ) -> StoreResult<(Session, Option<Event>)> {
        sessions::update(&mut *self.writer().await?, id, change, now).await
    }

    async fn append_event(
        &self,
        session_id: &SessionId,
        data: EventData,
        now: Timestamp,
    ) -> StoreResult<Event> {
        let mut writer = self.writer().await?;
        let mut tx = begin(&mut writer).await?;
        let event = events::insert(&mut tx, session_id, data, now).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn list_events(&self, query: EventQuery) -> StoreResult<Vec<Event>> {
        events::list(self.readers(), query).await
    }

    async fn accept_outbound(
        &self,
        batch: Vec<NewOutbound>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Accepted>>> {
        messages::accept(&mut *self.writer().await?, batch, now).await
    }

    async fn claim_outbound(
        &self,
        requests: Vec<ClaimRequest>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<(Vec<Claimed>, Vec<Event>)>> {
        messages::claim(&mut *self.writer().await?, requests, now, lease_until).await
    }

    async fn next_outbound_due(&self, session_id: &SessionId) -> StoreResult<Option<Timestamp>> {
        messages::next_due(self.readers(), session_id).await
    }

    async fn apply_statuses(
        &self,
        updates: Vec<StatusUpdate>,
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<Vec<Event>>>> {
        messages::apply_statuses(&mut *self.writer().await?, updates, now).await
    }

    async fn create_media(&self, media: &Media) -> StoreResult<()> {
        media::insert(&mut *self.writer().await?, media).await
    }

    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>> {
        media::get(self.readers(), id).await
    }

    async fn expire_media(&self, before: Timestamp, limit: u32) -> StoreResult<Vec<MediaId>> {
        media::expire(&mut *self.writer().await?, before, limit).await
    }

    async fn sent_since(
        &self,
        session_id: &SessionId,
        since: Timestamp,
    ) -> StoreResult<Vec<(String, Timestamp)>> {
        messages::sent_since(self.readers(), session_id, since).await
    }

    async fn create_campaign(&self, new: NewCampaign, now: Timestamp) -> StoreResult<(Campaign, Event)> {
        campaigns::create(&mut *self.writer().await?, new, now).await
    }

    async fn get_campaign(&self, session: &SessionId, id: &CampaignId) -> StoreResult<Option<Campaign>> {
        campaigns::get(self.readers(), session, id).await
    }

    async fn list_campaigns(&self, session: &SessionId) -> StoreResult<Vec<Campaign>> {
        campaigns::list(self.readers(), session).await
    }

    async fn act_on_campaign(
        &self,
        session: &SessionId,
        id: &CampaignId,
        action: CampaignAction,
        now: Timestamp,
    ) -> StoreResult<Result<(Campaign, Event), CampaignState>> {
        campaigns::act(&mut *self.writer().await?, session, id, action, now).await
    }

    async fn list_campaign_recipients(&self, query: RecipientQuery) -> StoreResult<Vec<Message>> {
        campaigns::recipients(self.readers(), query).await
    }

    async fn store_inbound(&self, batch: Vec<NewInbound>, now: Timestamp) -> StoreResult<Vec<Event>> {
        messages::store_inbound(&mut *self.writer().await?, batch, now).await
    }

    async fn cancel_scheduled(&self, id: &MessageId, now: Timestamp) -> StoreResult<(Message, Event)> {
        messages::cancel_scheduled(&mut *self.writer().await?, id, now).await
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        messages::get(self.readers(), id).await
    }

    async fn list_messages(&self, query: MessageQuery) -> StoreResult<Vec<Message>> {
        messages::list(self.readers(), query).await
    }

    async fn stats(&self) -> StoreResult<Stats> {
        let sessions: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT connector, status, COUNT(*) FROM sessions GROUP BY connector, status")
                .fetch_all(self.readers())
                .await?;
        let (outbox, outbox_oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(m.created_at) FROM outbox o JOIN messages m ON m.id = o.message_id \
             WHERE o.held = 0",
        )
        .fetch_one(self.readers())
        .await?;
        let (pending, pending_oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(self.readers())
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Stats {
            sessions: sessions.into_iter().map(|(c, s, n)| (c, s, count(n))).collect(),
            outbox: count(outbox),
            outbox_oldest: outbox_oldest.map(from_millis).transpose()?,
            deliveries_pending: count(pending),
            deliveries_oldest: pending_oldest.map(from_millis).transpose()?,
        })
    }

    async fn create_template(
        &self,
        name: String,
        language: Option<String>,
        content: MessageContent,
        now: Timestamp,
    ) -> StoreResult<Template> {
        templates::create(&mut *self.writer().await?, name, language, content, now).await
    }

    async fn get_template(&self, name: &str) -> StoreResult<Option<Template>> {
        templates::get(self.readers(), name).await
    }

    async fn list_templates(&self) -> StoreResult<Vec<Template>> {
        templates::list(self.readers()).await
    }

    async fn update_template(
        &self,
        name: &str,
        change: TemplateChange,
        now: Timestamp,
    ) -> StoreResult<Option<Template>> {
        templates::update(&mut *self.writer().await?, name, change, now).await
    }

    async fn delete_template(&self, name: &str) -> StoreResult<bool> {
        templates::delete(&mut *self.writer().await?, name).await
    }

    async fn create_hook(&self, new: NewHook, now: Timestamp) -> StoreResult<Hook> {
        templates::create_hook(&mut *self.writer().await?, new, now).await
    }

    async fn list_hooks(&self, session: &SessionId) -> StoreResult<Vec<Hook>> {
        templates::list_hooks(self.readers(), session).await
    }

    async fn delete_hook(&self, session: &SessionId, id: &HookId) -> StoreResult<bool> {
        templates::delete_hook(&mut *self.writer().await?, session, id).await
    }

    async fn use_hook(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Hook>> {
        templates::use_hook(&mut *self.writer().await?, token_hash, now).await
    }

    async fn save_contacts(&self, session: &SessionId, contacts: Vec<Contact>) -> StoreResult<()> {
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        contacts::save_contacts(&mut tx, session, &contacts).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_contacts(
        &self,
        session: &SessionId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Contact>> {
        contacts::list_contacts(self.readers(), session, after, limit).await
    }

    async fn save_chats(&self, session: &SessionId, chats: Vec<Chat>) -> StoreResult<()> {
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        contacts::save_chats(&mut tx, session, &chats).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_chats(&self, session: &SessionId, offset: u32, limit: u32) -> StoreResult<Vec<Chat>> {
        contacts::list_chats(self.readers(), session, offset, limit).await
    }

    async fn last_event_id(&self) -> StoreResult<Option<EventId>> {
        events::last_id(self.readers()).await
    }

    async fn create_webhook(&self, new: NewWebhook, now: Timestamp) -> StoreResult<Webhook> {
        webhooks::create(&mut *self.writer().await?, new, now).await
    }

    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>> {
        webhooks::get(self.readers(), id).await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        webhooks::list(self.readers()).await
    }

    async fn update_webhook(
        &self,
        id: &WebhookId,
        change: WebhookChange,
        now: Timestamp,
    ) -> StoreResult<Option<Webhook>> {
        webhooks::update(&mut *self.writer().await?, id, change, now).await
    }

    async fn rotate_webhook_secret(
        &self,
        id: &WebhookId,
        secret: String,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<Webhook>> {
        webhooks::rotate_secret(&mut *self.writer().await?, id, secret, previous_until, now).await
    }

    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool> {
        webhooks::delete(&mut *self.writer().await?, id).await
    }

    async fn claim_deliveries(
        &self,
        slots: DeliverySlots,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<(Webhook, Vec<ClaimedDelivery>)>> {
        webhooks::claim(&mut *self.writer().await?, slots, now, lease_until).await
    }

    async fn release_deliveries(&self, ids: Vec<DeliveryId>, now: Timestamp) -> StoreResult<()> {
        webhooks::release(&mut *self.writer().await?, ids, now).await
    }

    async fn record_attempts(
        &self,
        records: Vec<AttemptRecord>,
        now: Timestamp,
        disable_after: chrono::Duration,
    ) -> StoreResult<Vec<Event>> {
        webhooks::record_attempts(&mut *self.writer().await?, records, now, disable_after).await
    }

    async fn list_deliveries(&self, query: DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        webhooks::list_deliveries(self.readers(), query).await
    }

    async fn get_delivery(&self, webhook: &WebhookId, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        webhooks::get_delivery(self.readers(), webhook, id).await
    }

    async fn retry_delivery(
        &self,
        webhook: &WebhookId,
        id: DeliveryId,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>> {
        if !webhooks::retry(&mut *self.writer().await?, webhook, id, now).await? {
            return Ok(None);
        }
        webhooks::get_delivery(self.readers(), webhook, id).await
    }

    async fn replay_events(
        &self,
        webhook: &WebhookId,
        from: EventBound,
        until: Option<EventBound>,
        now: Timestamp,
    ) -> StoreResult<Replayed> {
        webhooks::replay(&mut *self.writer().await?, webhook, from, until, now).await
    }
}

#[async_trait]
impl DeviceKeys for Backend {
    async fn get_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
    ) -> StoreResult<Vec<DeviceKey>> {
        device_keys::get(self.readers(), session, kind, keys).await
    }

    async fn scan_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        prefix: &str,
    ) -> StoreResult<Vec<DeviceKey>> {
        device_keys::scan(self.readers(), session, kind, prefix).await
    }

    async fn any_device_key(
        &self,
        session: &SessionId,
        kinds: &[&str],
        prefixes: &[&str],
    ) -> StoreResult<bool> {
        device_keys::any(self.readers(), session, kinds, prefixes).await
    }

    async fn put_device_keys(&self, session: &SessionId, keys: Vec<DeviceKey>) -> StoreResult<()> {
        device_keys::put(&mut *self.writer().await?, session, keys).await
    }

    async fn delete_device_keys(&self, session: &SessionId, kind: &str, keys: &[&str]) -> StoreResult<u64> {
        device_keys::delete(&mut *self.writer().await?, session, kind, keys).await
    }

    async fn delete_device_keys_by_prefix(
        &self,
        session: &SessionId,
        kind: &str,
        prefix: &str,
    ) -> StoreResult<u64> {
        device_keys::delete_by_prefix(&mut *self.writer().await?, session, kind, prefix).await
    }

    async fn expire_device_keys(&self, session: &SessionId, kind: &str, before: i64) -> StoreResult<u64> {
        device_keys::expire(&mut *self.writer().await?, session, kind, before).await
    }

    async fn set_device_key_numbers(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
        number: i64,
    ) -> StoreResult<()> {
        device_keys::set_numbers(&mut *self.writer().await?, session, kind, keys, number).await
    }

    async fn take_device_key(
        &self,
        session: &SessionId,
        kind: &str,
        key: &str,
    ) -> StoreResult<Option<DeviceKey>> {
        device_keys::take(&mut *self.writer().await?, session, kind, key).await
    }

    async fn clear_device_keys(&self, session: &SessionId) -> StoreResult<()> {
        device_keys::clear(&mut *self.writer().await?, session).await
    }
}
