//! Bulk campaigns: the campaign row, its messages (created in batches with it) and the
//! commands that hold, release or call off the ones not sent yet.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use wagate_core::{
    Campaign, CampaignAction, CampaignCounts, CampaignId, CampaignState, CampaignStatusData, EventData,
    Message, MessageContent, MessageStatus, SessionId, Timestamp,
};

use super::message_rows;
use super::{
    begin, corrupt, dialect, events, from_json, from_millis, millis, push_list, Backend, Db, DbConn, DbRow,
};
use crate::{Appended, Campaigns, NewCampaign, RecipientQuery, StoreError, StoreResult};

const COLUMNS: &str =
    "id, session_id, name, state, template, content, scheduled_at, total, rejected, created_at, updated_at";

/// A campaign row, before its counts are read.
fn from_row(row: &DbRow) -> StoreResult<(Campaign, CampaignState)> {
    let id: String = row.try_get("id")?;
    let session_id: String = row.try_get("session_id")?;
    let state: String = row.try_get("state")?;
    let state = CampaignState::parse(&state).ok_or_else(|| corrupt("campaign state", &state))?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let campaign = Campaign {
        id: CampaignId::parse(&id).map_err(|_| corrupt("campaign id", &id))?,
        session_id: SessionId::parse(&session_id).map_err(|_| corrupt("session id", &session_id))?,
        name: row.try_get("name")?,
        status: Campaign::status_of(state, &CampaignCounts::default()),
        template: row.try_get("template")?,
        content: from_json::<MessageContent>(row.try_get("content")?)?,
        scheduled_at: row.try_get::<Option<i64>, _>("scheduled_at")?.map(from_millis).transpose()?,
        total: count(row.try_get("total")?),
        rejected: count(row.try_get("rejected")?),
        counts: CampaignCounts::default(),
        failed_by_reason: BTreeMap::new(),
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    };
    Ok((campaign, state))
}

/// Fills in a campaign's counts (read off its messages) and the status they imply.
async fn with_progress(
    conn: &mut DbConn,
    (mut campaign, state): (Campaign, CampaignState),
) -> StoreResult<Campaign> {
    // Both read off the campaign index (the second only its failed messages' rows).
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM messages WHERE campaign_id = $1 GROUP BY status")
            .bind(campaign.id.as_str())
            .fetch_all(&mut *conn)
            .await?;
    let reasons: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT status_reason, COUNT(*) FROM messages WHERE campaign_id = $1 AND status = 'failed' \
         GROUP BY status_reason",
    )
    .bind(campaign.id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    for (reason, n) in reasons {
        campaign
            .failed_by_reason
            .insert(reason.unwrap_or_else(|| "unknown".into()), u64::try_from(n).unwrap_or(0));
    }
    let mut counts = CampaignCounts::default();
    for (status, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        let slot = match MessageStatus::parse(&status) {
            Some(MessageStatus::Scheduled) => &mut counts.scheduled,
            Some(MessageStatus::Queued) => &mut counts.queued,
            Some(MessageStatus::Sending) => &mut counts.sending,
            Some(MessageStatus::Sent) => &mut counts.sent,
            Some(MessageStatus::Delivered) => &mut counts.delivered,
            Some(MessageStatus::Read) => &mut counts.read,
            Some(MessageStatus::Failed) => &mut counts.failed,
            Some(MessageStatus::Canceled) => &mut counts.canceled,
            _ => return Err(corrupt("campaign message status", &status)),
        };
        *slot += n;
    }
    campaign.status = Campaign::status_of(state, &counts);
    campaign.counts = counts;
    Ok(campaign)
}

async fn fetch(conn: &mut DbConn, session: &SessionId, id: &CampaignId) -> StoreResult<Option<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND session_id = $2");
    let row = sqlx::query(&sql).bind(id.as_str()).bind(session.as_str()).fetch_optional(&mut *conn).await?;
    match row {
        Some(row) => Ok(Some(with_progress(conn, from_row(&row)?).await?)),
        None => Ok(None),
    }
}

/// The `data` of a `campaign.status` event.
async fn append_event(conn: &mut DbConn, campaign: &Campaign, now: Timestamp) -> StoreResult<Appended> {
    let data = EventData::CampaignStatus(CampaignStatusData {
        campaign_id: campaign.id.clone(),
        name: campaign.name.clone(),
        status: campaign.status,
        total: campaign.total,
        counts: campaign.counts.clone(),
    });
    events::insert(conn, &campaign.session_id, data, now).await
}

/// Marks `completed` the running campaigns among `ids` that have nothing left to send, and
/// appends their events; called in the transaction that recorded send results.
pub(super) async fn complete_finished(
    conn: &mut DbConn,
    ids: &[&CampaignId],
    now: Timestamp,
) -> StoreResult<Vec<Appended>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = QueryBuilder::<Db>::new("UPDATE campaigns SET state = 'completed', updated_at = ");
    sql.push_bind(millis(now)).push(" WHERE state = 'running' AND id");
    push_list(&mut sql, ids.iter().map(|id| id.as_str()));
    sql.push(
        " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.campaign_id = campaigns.id \
         AND m.status IN ('queued', 'scheduled', 'sending')) \
         RETURNING id, session_id",
    );
    let done: Vec<(String, String)> = sql.build_query_as().fetch_all(&mut *conn).await?;
    let mut events = Vec::with_capacity(done.len());
    for (id, session) in done {
        let id = CampaignId::parse(&id).map_err(|_| corrupt("campaign id", &id))?;
        let session = SessionId::parse(&session).map_err(|_| corrupt("session id", &session))?;
        if let Some(campaign) = fetch(conn, &session, &id).await? {
            events.push(append_event(conn, &campaign, now).await?);
        }
    }
    Ok(events)
}

#[async_trait]
impl Campaigns for Backend {
    async fn create_campaign(&self, new: NewCampaign, now: Timestamp) -> StoreResult<(Campaign, Appended)> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let now = from_millis(millis(now))?;
        let scheduled_at =
            new.scheduled_at.map(|at| from_millis(millis(at))).transpose()?.filter(|at| *at > now);
        let mut tx = begin(conn).await?;
        let sender: Option<Option<String>> = sqlx::query_scalar("SELECT jid FROM sessions WHERE id = $1")
            .bind(new.session_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let sender = sender.ok_or(StoreError::NotFound("session"))?;
        let id = CampaignId::generate();
        let content = serde_json::to_string(&new.content).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO campaigns (id, session_id, name, state, template, content, scheduled_at, total, \
             rejected, created_at, updated_at) VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id.as_str())
        .bind(new.session_id.as_str())
        .bind(&new.name)
        .bind(&new.template)
        .bind(content)
        .bind(scheduled_at.map(millis))
        .bind(new.recipients.len() as i64)
        .bind(new.rejected as i64)
        .bind(millis(now))
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        let status = if scheduled_at.is_some() { MessageStatus::Scheduled } else { MessageStatus::Queued };
        message_rows::insert_campaign_messages(&mut tx, &id, &new, sender, status, scheduled_at, now).await?;
        let campaign = fetch(&mut tx, &new.session_id, &id).await?.ok_or(StoreError::NotFound("campaign"))?;
        let event = append_event(&mut tx, &campaign, now).await?;
        tx.commit().await?;
        Ok((campaign, event))
    }

    async fn get_campaign(&self, session: &SessionId, id: &CampaignId) -> StoreResult<Option<Campaign>> {
        let pool = self.readers();
        fetch(&mut *pool.acquire().await?, session, id).await
    }

    async fn list_campaigns(&self, session: &SessionId) -> StoreResult<Vec<Campaign>> {
        let pool = self.readers();
        let mut conn = pool.acquire().await?;
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE session_id = $1 ORDER BY id DESC");
        let rows = sqlx::query(&sql).bind(session.as_str()).fetch_all(&mut *conn).await?;
        let mut campaigns = Vec::with_capacity(rows.len());
        for row in &rows {
            campaigns.push(with_progress(&mut conn, from_row(row)?).await?);
        }
        Ok(campaigns)
    }

    async fn act_on_campaign(
        &self,
        session: &SessionId,
        id: &CampaignId,
        action: CampaignAction,
        now: Timestamp,
    ) -> StoreResult<Result<(Campaign, Appended), CampaignState>> {
        let mut writer = self.writer().await?;
        let conn: &mut DbConn = &mut writer;
        let now = from_millis(millis(now))?;
        let mut tx = begin(conn).await?;
        // Locked: two actions on one campaign apply one after the other.
        let state: Option<String> = sqlx::query_scalar(&format!(
            "SELECT state FROM campaigns WHERE id = $1 AND session_id = $2{}",
            dialect::FOR_UPDATE
        ))
        .bind(id.as_str())
        .bind(session.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let state = state.ok_or(StoreError::NotFound("campaign"))?;
        let state = CampaignState::parse(&state).ok_or_else(|| corrupt("campaign state", &state))?;
        let Some(mut next) = state.after(action) else {
            return Ok(Err(state));
        };
        match action {
            CampaignAction::Pause | CampaignAction::Resume => {
                sqlx::query("UPDATE messages SET held = $1 WHERE campaign_id = $2 AND due_at IS NOT NULL")
                    .bind(i64::from(action == CampaignAction::Pause))
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                // Paused just as its last messages were sent: nothing is left to resume.
                let left: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE campaign_id = $1 \
                         AND status IN ('queued', 'scheduled', 'sending'))",
                )
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
                if action == CampaignAction::Resume && !left {
                    next = CampaignState::Completed;
                }
            }
            CampaignAction::Cancel => {
                message_rows::cancel_campaign_messages(&mut tx, id, "campaign canceled", now).await?;
            }
        }
        sqlx::query("UPDATE campaigns SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(next.as_str())
            .bind(millis(now))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let campaign = fetch(&mut tx, session, id).await?.ok_or(StoreError::NotFound("campaign"))?;
        let event = append_event(&mut tx, &campaign, now).await?;
        tx.commit().await?;
        Ok(Ok((campaign, event)))
    }

    async fn list_campaign_recipients(&self, query: RecipientQuery) -> StoreResult<Vec<Message>> {
        let pool = self.readers();
        let mut sql = QueryBuilder::<Db>::new(format!(
            "SELECT {} FROM messages WHERE campaign_id = ",
            message_rows::SHOWN_COLUMNS
        ));
        sql.push_bind(query.campaign_id.as_str());
        if let Some(status) = query.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(after) = &query.after {
            sql.push(" AND id > ").push_bind(after.as_str());
        }
        sql.push(" ORDER BY id LIMIT ").push_bind(i64::from(query.limit));
        let rows = sql.build().fetch_all(pool).await?;
        rows.iter().map(message_rows::from_row).collect()
    }
}
