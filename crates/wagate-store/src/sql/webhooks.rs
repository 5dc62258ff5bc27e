//! Webhooks, their deliveries and the attempts of each delivery.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use wagate_core::{
    Attempt, Delivery, DeliveryId, DeliveryStatus, EventData, EventId, EventType, OrgId, SessionId,
    Timestamp, Webhook, WebhookDisabledData, WebhookId,
};

use super::events;
use super::secrets::{open_text, webhook_row};
use super::values::{execute_rows, ROWS_PER_INSERT};
use super::{
    begin, corrupt, dialect, from_json, from_millis, millis, push_list, push_numbers, Backend, Db, DbConn,
    DbPool, DbRow,
};
use crate::keyring::Keyring;
use crate::{
    Appended, AttemptOutcome, AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliverySlots, EventBound,
    NewWebhook, Replayed, StoreError, StoreResult, WebhookChange, Webhooks,
};

const WEBHOOK_COLUMNS: &str = "id, org_id, url, events, session_id, description, enabled, disabled_reason, \
     secret, secret_key_id, previous_secret, previous_secret_key_id, previous_secret_until, created_at, \
     updated_at";

/// A webhook as stored; its secrets are sealed (`secrets.rs`).
fn webhook_from_row(row: &DbRow, keyring: &Keyring) -> StoreResult<Webhook> {
    let id: String = row.try_get("id")?;
    let place = webhook_row(&id);
    let org: String = row.try_get("org_id")?;
    let session: Option<String> = row.try_get("session_id")?;
    let secret_key: Option<String> = row.try_get("secret_key_id")?;
    let previous_key: Option<String> = row.try_get("previous_secret_key_id")?;
    let previous: Option<String> = row.try_get("previous_secret")?;
    let previous_until: Option<i64> = row.try_get("previous_secret_until")?;
    Ok(Webhook {
        id: WebhookId::parse(&id).map_err(|_| corrupt("webhook id", &id))?,
        org_id: OrgId::parse(&org).map_err(|_| corrupt("organization id", &org))?,
        url: row.try_get("url")?,
        events: from_json(row.try_get("events")?)?,
        session_id: session
            .map(|s| SessionId::parse(&s).map_err(|_| corrupt("session id", &s)))
            .transpose()?,
        description: row.try_get("description")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        secret: open_text(keyring, secret_key.as_deref(), row.try_get("secret")?, &place)?,
        previous_secret: match (previous, previous_until) {
            (Some(secret), Some(until)) => {
                Some((open_text(keyring, previous_key.as_deref(), secret, &place)?, from_millis(until)?))
            }
            _ => None,
        },
    })
}

fn events_json(events: &[String]) -> String {
    serde_json::Value::from(events.to_vec()).to_string()
}

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event_seq, e.type, d.status, d.attempts, \
     d.next_attempt_at, d.created_at, d.updated_at";

fn delivery_from_row(row: &DbRow) -> StoreResult<Delivery> {
    let webhook: String = row.try_get("webhook_id")?;
    let kind: String = row.try_get("type")?;
    let status: String = row.try_get("status")?;
    let next: Option<i64> = row.try_get("next_attempt_at")?;
    let status = DeliveryStatus::parse(&status).ok_or_else(|| corrupt("delivery status", &status))?;
    Ok(Delivery {
        id: DeliveryId::from_seq(row.try_get("id")?),
        webhook_id: WebhookId::parse(&webhook).map_err(|_| corrupt("webhook id", &webhook))?,
        event_id: EventId::from_seq(row.try_get("event_seq")?),
        event_type: EventType::parse(&kind).ok_or_else(|| corrupt("event type", &kind))?,
        status,
        attempt_count: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: match (status, next) {
            (DeliveryStatus::Pending, Some(at)) => Some(from_millis(at)?),
            _ => None,
        },
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        attempts: Vec::new(),
    })
}

/// Fills in each delivery's attempts, oldest first.
async fn with_attempts(pool: &DbPool, mut deliveries: Vec<Delivery>) -> StoreResult<Vec<Delivery>> {
    if deliveries.is_empty() {
        return Ok(deliveries);
    }
    let mut sql = QueryBuilder::<Db>::new(
        "SELECT delivery_id, at, status_code, latency_ms, response, error FROM webhook_attempts \
         WHERE delivery_id",
    );
    push_numbers(&mut sql, deliveries.iter().map(|d| d.id.seq()));
    sql.push(" ORDER BY rowid");
    let mut attempts: HashMap<i64, Vec<Attempt>> = HashMap::new();
    for row in sql.build().fetch_all(pool).await? {
        let status: Option<i64> = row.try_get("status_code")?;
        attempts.entry(row.try_get("delivery_id")?).or_default().push(Attempt {
            at: from_millis(row.try_get("at")?)?,
            status_code: status.and_then(|s| u16::try_from(s).ok()),
            latency_ms: u64::try_from(row.try_get::<i64, _>("latency_ms")?).unwrap_or(0),
            response_body: row.try_get("response")?,
            error: row.try_get("error")?,
        });
    }
    for delivery in &mut deliveries {
        delivery.attempts = attempts.remove(&delivery.id.seq()).unwrap_or_default();
    }
    Ok(deliveries)
}

/// Makes a delivery due now; false when the webhook has no such delivery.
pub(super) async fn retry(
    conn: &mut DbConn,
    webhook: &WebhookId,
    id: DeliveryId,
    now: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1 \
         WHERE id = $2 AND webhook_id = $3",
    )
    .bind(millis(now))
    .bind(id.seq())
    .bind(webhook.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

fn push_bound(sql: &mut QueryBuilder<'_, Db>, bound: EventBound, op: &str) {
    match bound {
        EventBound::Id(id) => sql.push(format!(" AND e.seq {op} ")).push_bind(id.seq()),
        EventBound::Time(at) => sql.push(format!(" AND e.created_at {op} ")).push_bind(millis(at)),
    };
}

#[async_trait]
impl Webhooks for Backend {
    async fn create_webhook(&self, new: NewWebhook, now: Timestamp) -> StoreResult<Webhook> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let now = from_millis(millis(now))?;
        let webhook = Webhook {
            id: WebhookId::generate(),
            org_id: new.org_id,
            url: new.url,
            events: new.events,
            session_id: new.session_id,
            description: new.description,
            enabled: true,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
            secret: new.secret,
            previous_secret: None,
        };
        let sealed = self.keyring().seal(webhook.secret.as_bytes(), &webhook_row(webhook.id.as_str()));
        sqlx::query(
            "INSERT INTO webhooks (id, url, events, session_id, description, secret, secret_key_id, created_at, \
             updated_at, org_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(webhook.id.as_str())
        .bind(&webhook.url)
        .bind(events_json(&webhook.events))
        .bind(webhook.session_id.as_ref().map(SessionId::as_str))
        .bind(&webhook.description)
        .bind(sealed.to_text())
        .bind(sealed.key_id.as_str())
        .bind(millis(now))
        .bind(millis(now))
        .bind(webhook.org_id.as_str())
        .execute(conn)
        .await?;
        Ok(webhook)
    }

    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>> {
        let pool = self.readers();
        let row = sqlx::query(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?;
        row.as_ref().map(|row| webhook_from_row(row, self.keyring())).transpose()
    }

    async fn list_webhooks(&self, org: Option<&OrgId>) -> StoreResult<Vec<Webhook>> {
        let pool = self.readers();
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE $1 IS NULL OR org_id = $1 ORDER BY id"
        ))
        .bind(org.map(OrgId::as_str))
        .fetch_all(pool)
        .await?;
        rows.iter().map(|row| webhook_from_row(row, self.keyring())).collect()
    }

    async fn update_webhook(
        &self,
        id: &WebhookId,
        change: WebhookChange,
        now: Timestamp,
    ) -> StoreResult<Option<Webhook>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut sql = QueryBuilder::<Db>::new("UPDATE webhooks SET updated_at = ");
        sql.push_bind(millis(now));
        if let Some(url) = change.url {
            sql.push(", url = ").push_bind(url);
        }
        if let Some(events) = change.events {
            sql.push(", events = ").push_bind(events_json(&events));
        }
        if let Some(description) = change.description {
            sql.push(", description = ").push_bind(description);
        }
        if let Some(enabled) = change.enabled {
            sql.push(", disabled_reason = NULL, failing_since = NULL, enabled = ").push_bind(enabled);
        }
        sql.push(" WHERE id = ").push_bind(id.as_str());
        sql.push(format!(" RETURNING {WEBHOOK_COLUMNS}"));
        let row = sql.build().fetch_optional(conn).await?;
        row.as_ref().map(|row| webhook_from_row(row, self.keyring())).transpose()
    }

    async fn rotate_webhook_secret(
        &self,
        id: &WebhookId,
        secret: String,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<Webhook>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let sealed = self.keyring().seal(secret.as_bytes(), &webhook_row(id.as_str()));
        // The right-hand sides see the row before the update: the old secret becomes the previous one.
        let row = sqlx::query(&format!(
            "UPDATE webhooks SET previous_secret = secret, previous_secret_key_id = secret_key_id, \
             previous_secret_until = $1, secret = $2, secret_key_id = $3, updated_at = $4 \
             WHERE id = $5 RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(millis(previous_until))
        .bind(sealed.to_text())
        .bind(sealed.key_id.as_str())
        .bind(millis(now))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
        row.as_ref().map(|row| webhook_from_row(row, self.keyring())).transpose()
    }

    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id.as_str()).execute(conn).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_deliveries(
        &self,
        slots: DeliverySlots,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<(Webhook, Vec<ClaimedDelivery>)>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        let rows = sqlx::query(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled ORDER BY id"))
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed = Vec::new();
        for row in &rows {
            let webhook = webhook_from_row(row, self.keyring())?;
            let busy = slots.in_flight.get(&webhook.id).copied().unwrap_or(0);
            let free = slots.max_in_flight.saturating_sub(busy);
            if free == 0 {
                claimed.push((webhook, Vec::new()));
                continue;
            }
            // Deliveries another node is claiming are skipped, not claimed twice.
            let leased = sqlx::query(&format!(
                "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id{}SELECT id FROM webhook_deliveries \
                 WHERE webhook_id = $2 AND status = 'pending' AND next_attempt_at <= $3 \
                 ORDER BY next_attempt_at, id LIMIT $4{}{} RETURNING id, event_seq, attempts",
                dialect::AMONG[0],
                dialect::SKIP_LOCKED,
                dialect::AMONG[1]
            ))
            .bind(millis(lease_until))
            .bind(webhook.id.as_str())
            .bind(millis(now))
            .bind(i64::from(free))
            .fetch_all(&mut *tx)
            .await?;
            if leased.is_empty() {
                claimed.push((webhook, Vec::new()));
                continue;
            }
            let mut sql = QueryBuilder::<Db>::new(
                "SELECT seq, type, session_id, org_id, created_at, data FROM events WHERE seq",
            );
            let mut wanted = Vec::with_capacity(leased.len());
            for row in &leased {
                let (id, seq, attempts): (i64, i64, i64) =
                    (row.try_get("id")?, row.try_get("event_seq")?, row.try_get("attempts")?);
                wanted.push((id, seq, attempts));
            }
            push_numbers(&mut sql, wanted.iter().map(|(_, seq, _)| *seq));
            let mut found: HashMap<i64, wagate_core::Event> = HashMap::new();
            for row in sql.build().fetch_all(&mut *tx).await? {
                let event = events::from_row(&row)?;
                found.insert(event.id.seq(), event);
            }
            wanted.sort_unstable();
            let mut deliveries = Vec::with_capacity(wanted.len());
            let mut orphans = Vec::new();
            for (id, seq, attempts) in wanted {
                // Retention deleted the event while this delivery was queued for it (a replay
                // racing a sweep): there is nothing left to deliver.
                let Some(event) = found.remove(&seq) else {
                    orphans.push(id);
                    continue;
                };
                deliveries.push(ClaimedDelivery {
                    id: DeliveryId::from_seq(id),
                    event,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                });
            }
            if !orphans.is_empty() {
                tracing::warn!(webhook = %webhook.id, deliveries = orphans.len(), "dropping deliveries of deleted events");
                let mut sql = QueryBuilder::<Db>::new("DELETE FROM webhook_deliveries WHERE id");
                push_numbers(&mut sql, orphans);
                sql.build().execute(&mut *tx).await?;
            }
            claimed.push((webhook, deliveries));
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn release_deliveries(&self, ids: Vec<DeliveryId>, now: Timestamp) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let mut sql = QueryBuilder::<Db>::new("UPDATE webhook_deliveries SET next_attempt_at = ");
            sql.push_bind(millis(now)).push(" WHERE status = 'pending' AND id");
            push_numbers(&mut sql, chunk.iter().map(|id| id.seq()));
            sql.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn record_attempts(
        &self,
        records: Vec<AttemptRecord>,
        now: Timestamp,
        disable_after: chrono::Duration,
    ) -> StoreResult<Vec<Appended>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        // A delivery can vanish mid-attempt with its webhook; its attempt is dropped with it.
        let update = format!(
            "UPDATE webhook_deliveries SET status = v.status, attempts = attempts + 1, \
             next_attempt_at = v.next_at, updated_at = v.at FROM (SELECT CAST(r.value ->> 0 AS BIGINT) AS id, \
             r.value ->> 1 AS status, CAST(r.value ->> 2 AS BIGINT) AS next_at, CAST(r.value ->> 3 AS BIGINT) AS at \
             FROM {}) AS v WHERE webhook_deliveries.id = v.id AND {}",
            dialect::json_rows("$1"),
            dialect::among_json_rows("webhook_deliveries.id", "CAST(r.value ->> 0 AS BIGINT)", "$1")
        );
        let insert = format!(
            "INSERT INTO webhook_attempts (delivery_id, at, status_code, latency_ms, response, error) \
             SELECT v.id, v.at, v.status_code, v.latency_ms, v.response, v.error FROM \
             (SELECT CAST(r.value ->> 0 AS BIGINT) AS id, CAST(r.value ->> 1 AS BIGINT) AS at, \
             CAST(r.value ->> 2 AS BIGINT) AS status_code, CAST(r.value ->> 3 AS BIGINT) AS latency_ms, \
             r.value ->> 4 AS response, r.value ->> 5 AS error, r.n FROM {}) AS v \
             WHERE EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = v.id AND {}) ORDER BY v.n",
            dialect::json_rows("$1"),
            dialect::among_json_rows("d.id", "CAST(r.value ->> 0 AS BIGINT)", "$1")
        );
        execute_rows(&mut tx, &update, &records, |record| {
            let (status, next_at) = match record.outcome {
                AttemptOutcome::Delivered => (DeliveryStatus::Delivered, None),
                AttemptOutcome::RetryAt(at) => (DeliveryStatus::Pending, Some(millis(at))),
                AttemptOutcome::Failed => (DeliveryStatus::Failed, None),
            };
            (record.delivery.seq(), status.as_str(), next_at, millis(record.attempt.at))
        })
        .await?;
        execute_rows(&mut tx, &insert, &records, |record| {
            let attempt = &record.attempt;
            (
                record.delivery.seq(),
                millis(attempt.at),
                attempt.status_code.map(i64::from),
                i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX),
                attempt.response_body.as_deref(),
                attempt.error.as_deref(),
            )
        })
        .await?;

        // A webhook is failing from its first failed attempt until its next success.
        let succeeded: HashSet<&str> = records
            .iter()
            .filter(|r| r.outcome == AttemptOutcome::Delivered)
            .map(|r| r.webhook_id.as_str())
            .collect();
        let failed: HashSet<&str> =
            records.iter().map(|r| r.webhook_id.as_str()).filter(|id| !succeeded.contains(id)).collect();
        if !succeeded.is_empty() {
            let mut sql = QueryBuilder::<Db>::new("UPDATE webhooks SET failing_since = NULL WHERE id");
            push_list(&mut sql, succeeded.iter().copied());
            sql.build().execute(&mut *tx).await?;
        }
        let mut disabled = Vec::new();
        if !failed.is_empty() {
            let mut sql =
                QueryBuilder::<Db>::new("UPDATE webhooks SET failing_since = COALESCE(failing_since, ");
            sql.push_bind(millis(now)).push(") WHERE id");
            push_list(&mut sql, failed.iter().copied());
            sql.build().execute(&mut *tx).await?;

            let reason = format!("every delivery failed for {} hours", disable_after.num_hours());
            let mut sql = QueryBuilder::<Db>::new("UPDATE webhooks SET enabled = FALSE, disabled_reason = ");
            sql.push_bind(&reason).push(", updated_at = ").push_bind(millis(now));
            sql.push(" WHERE enabled AND failing_since <= ").push_bind(millis(now - disable_after));
            sql.push(" AND id");
            push_list(&mut sql, failed.iter().copied());
            sql.push(" RETURNING id, url, session_id, failing_since");
            for row in sql.build().fetch_all(&mut *tx).await? {
                let id: String = row.try_get("id")?;
                let session: Option<String> = row.try_get("session_id")?;
                let data = WebhookDisabledData {
                    webhook_id: WebhookId::parse(&id).map_err(|_| corrupt("webhook id", &id))?,
                    url: row.try_get("url")?,
                    session_id: session
                        .map(|s| SessionId::parse(&s).map_err(|_| corrupt("session id", &s)))
                        .transpose()?,
                    reason: reason.clone(),
                    failing_since: from_millis(row.try_get("failing_since")?)?,
                };
                disabled.push((None, EventData::WebhookDisabled(data)));
            }
        }
        let events = events::insert_many(&mut tx, disabled, now).await?;
        tx.commit().await?;
        Ok(events)
    }

    async fn list_deliveries(&self, query: DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        let pool = self.readers();
        let mut sql = QueryBuilder::<Db>::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.webhook_id = "
        ));
        sql.push_bind(query.webhook_id.as_str());
        if let Some(status) = query.status {
            sql.push(" AND d.status = ").push_bind(status.as_str());
        }
        if let Some(before) = query.before {
            sql.push(" AND d.id < ").push_bind(before.seq());
        }
        sql.push(" ORDER BY d.id DESC LIMIT ").push_bind(i64::from(query.limit));
        let rows = sql.build().fetch_all(pool).await?;
        let deliveries = rows.iter().map(delivery_from_row).collect::<StoreResult<Vec<_>>>()?;
        with_attempts(pool, deliveries).await
    }

    async fn get_delivery(&self, webhook: &WebhookId, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        let pool = self.readers();
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.id = $1 AND d.webhook_id = $2"
        ))
        .bind(id.seq())
        .bind(webhook.as_str())
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(with_attempts(pool, vec![delivery_from_row(&row)?]).await?.pop())
    }

    async fn replay_events(
        &self,
        webhook: &WebhookId,
        from: EventBound,
        until: Option<EventBound>,
        now: Timestamp,
    ) -> StoreResult<Replayed> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let mut tx = begin(conn).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1)")
            .bind(webhook.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            return Err(StoreError::NotFound("webhook"));
        }
        let mut sql = QueryBuilder::<Db>::new(
            "INSERT INTO webhook_deliveries (webhook_id, event_seq, status, next_attempt_at, created_at, updated_at) \
             SELECT w.id, e.seq, 'pending', ",
        );
        sql.push_bind(millis(now)).push(", ").push_bind(millis(now)).push(", ").push_bind(millis(now));
        sql.push(" FROM events e JOIN webhooks w ON w.id = ").push_bind(webhook.as_str());
        // Only numbered events: the others get their deliveries as they are numbered.
        sql.push(format!(" WHERE e.seq IS NOT NULL AND {}", events::webhook_wants_event()));
        push_bound(&mut sql, from, ">=");
        if let Some(until) = until {
            push_bound(&mut sql, until, "<=");
        }
        sql.push(" ORDER BY e.seq RETURNING event_seq");
        let queued: Vec<i64> = sql.build_query_scalar().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(Replayed {
            count: queued.len() as u64,
            first: queued.iter().min().copied().map(EventId::from_seq),
            last: queued.iter().max().copied().map(EventId::from_seq),
        })
    }

    async fn retry_delivery(
        &self,
        webhook: &WebhookId,
        id: DeliveryId,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>> {
        if !retry(&mut *self.writer().await?, webhook, id, now).await? {
            return Ok(None);
        }
        self.get_delivery(webhook, id).await
    }
}
