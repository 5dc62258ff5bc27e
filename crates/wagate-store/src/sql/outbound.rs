//! The outbox's writes: accepting outbound messages, applying their status changes and
//! claiming due ones for sending, each inside the caller's transaction
//! (`Messages::write_outbound` commits the three together).

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row};
use wagate_core::{
    CampaignId, Direction, EventData, Message, MessageId, MessageStatus, MessageStatusData, SessionId,
    StatusChange, Timestamp,
};

use super::events;
use super::message_rows::{
    fetch_by_wa_ids, fetch_many, fetch_where, from_row, insert_messages, write_statuses, COLUMNS,
};
use super::values::{json_array, json_text_elements, ROWS_PER_FOR_EACH, ROWS_PER_INSERT};
use super::{corrupt, dialect, from_millis, millis, push_list, Db, DbConn};
use crate::{
    Accepted, Appended, Claim, ClaimRequest, Claimed, MessageRef, NewOutbound, StatusUpdate, StoreError,
    StoreResult,
};

/// Appends the `message.status` events of messages that changed.
pub(super) async fn status_events(
    conn: &mut DbConn,
    changed: &[&Message],
    now: Timestamp,
) -> StoreResult<Vec<Appended>> {
    let new = changed
        .iter()
        .map(|m| (Some(m.session_id.clone()), EventData::MessageStatus(MessageStatusData::of(m))))
        .collect();
    events::insert_many(conn, new, now).await
}

/// Accepts outbound messages: each becomes `queued` (due now, or at its scheduled time) with a
/// `message.status` event. One result per input, in order.
pub(super) async fn accept(
    conn: &mut DbConn,
    batch: Vec<NewOutbound>,
    now: Timestamp,
) -> StoreResult<Vec<StoreResult<Accepted>>> {
    // The sender of each message is its session's JID (None until the session is linked),
    // and its organization; a session missing here does not exist.
    let mut senders: HashMap<SessionId, (Option<String>, String)> = HashMap::new();
    let mut wanted: Vec<&str> = batch.iter().map(|n| n.session_id.as_str()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    for chunk in wanted.chunks(ROWS_PER_INSERT) {
        let mut sql = QueryBuilder::<Db>::new("SELECT id, jid, org_id FROM sessions WHERE id");
        push_list(&mut sql, chunk.iter().copied());
        let rows: Vec<(String, Option<String>, String)> = sql.build_query_as().fetch_all(&mut *conn).await?;
        for (id, jid, org) in rows {
            senders.insert(SessionId::parse(&id).map_err(|_| corrupt("session id", &id))?, (jid, org));
        }
    }
    // Per input: a new message (index into `rows`), an earlier one, or an error.
    enum Outcome {
        New(usize),
        Earlier(Box<Message>),
        Replay(usize),
        Missing,
    }
    let mut rows: Vec<(Message, Option<String>)> = Vec::new();
    let mut keys_in_batch: HashMap<(SessionId, String), usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    for new in batch {
        let sender = match senders.get(&new.session_id) {
            Some((jid, org)) if org == new.org_id.as_str() => jid,
            _ => {
                outcomes.push(Outcome::Missing);
                continue;
            }
        };
        if let Some(key) = &new.idempotency_key {
            if let Some(index) = keys_in_batch.get(&(new.session_id.clone(), key.clone())) {
                outcomes.push(Outcome::Replay(*index));
                continue;
            }
            let earlier = fetch_where(
                conn,
                "session_id = $1 AND idempotency_key = $2",
                &[new.session_id.as_str(), key],
            )
            .await?;
            if let Some(message) = earlier {
                outcomes.push(Outcome::Earlier(Box::new(message)));
                continue;
            }
            keys_in_batch.insert((new.session_id.clone(), key.clone()), rows.len());
        }
        // A time already past means now.
        let scheduled_at =
            new.scheduled_at.map(|at| from_millis(millis(at))).transpose()?.filter(|at| *at > now);
        let message = Message {
            id: MessageId::generate(),
            session_id: new.session_id,
            direction: Direction::Out,
            chat: new.to.to_string(),
            from: sender.clone(),
            to: new.to.to_string(),
            content: new.content,
            status: if scheduled_at.is_some() { MessageStatus::Scheduled } else { MessageStatus::Queued },
            status_reason: None,
            wa_id: None,
            scheduled_at,
            campaign_id: None,
            next_attempt_at: None,
            context: new.context,
            mentions: new.mentions,
            sender: None,
            created_at: now,
            updated_at: now,
            status_history: Vec::new(),
        };
        outcomes.push(Outcome::New(rows.len()));
        rows.push((message, new.idempotency_key));
    }
    insert_messages(conn, &rows).await?;
    let created: Vec<&Message> = rows.iter().map(|(m, _)| m).collect();
    let events = status_events(conn, &created, now).await?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::New(i) => {
                Ok(Accepted { message: rows[i].0.clone(), created: true, event: Some(events[i].clone()) })
            }
            Outcome::Replay(i) => Ok(Accepted { message: rows[i].0.clone(), created: false, event: None }),
            Outcome::Earlier(message) => Ok(Accepted { message: *message, created: false, event: None }),
            Outcome::Missing => Err(StoreError::NotFound("session")),
        })
        .collect())
}

/// Applies status updates in order. Unknown messages and stale receipts are skipped; an
/// illegal transition fails only its own update. Each answer holds the update's
/// `message.status` event (none when skipped) and the `campaign.status` event of a campaign it
/// completed.
pub(super) async fn apply(
    conn: &mut DbConn,
    updates: Vec<StatusUpdate>,
    now: Timestamp,
) -> StoreResult<Vec<StoreResult<Vec<Appended>>>> {
    // Load every message the batch is about, keyed by message id.
    let ids: Vec<String> = updates
        .iter()
        .filter_map(|u| match &u.message {
            MessageRef::Id(id) => Some(id.to_string()),
            MessageRef::WaId(..) => None,
        })
        .collect();
    let mut messages = fetch_many(conn, &ids).await?;
    let receipts = updates.iter().filter_map(|u| match &u.message {
        MessageRef::WaId(session, wa_id) => Some((session.clone(), wa_id.clone())),
        MessageRef::Id(_) => None,
    });
    let mut by_wa_id: HashMap<(SessionId, String), String> = HashMap::new();
    for (key, message) in fetch_by_wa_ids(conn, Direction::Out, receipts).await? {
        by_wa_id.insert(key, message.id.to_string());
        messages.insert(message.id.to_string(), message);
    }

    // Apply in order in memory; a message may move twice in one batch (delivered, then read).
    let mut results = Vec::with_capacity(updates.len());
    let mut changed: Vec<Message> = Vec::new();
    let mut touched: Vec<String> = Vec::new();
    let mut requeued: Vec<(String, Timestamp)> = Vec::new();
    let mut finished: Vec<String> = Vec::new();
    for update in updates {
        let id = match &update.message {
            MessageRef::Id(id) => Some(id.to_string()),
            MessageRef::WaId(session, wa_id) => by_wa_id.get(&(session.clone(), wa_id.clone())).cloned(),
        };
        let Some(message) = id.as_ref().and_then(|id| messages.get_mut(id)) else {
            results.push(Ok(None));
            continue;
        };
        match message.status.transition(update.status) {
            Err(illegal) => results.push(Err(illegal.into())),
            Ok(StatusChange::Stale) => results.push(Ok(None)),
            Ok(StatusChange::Apply) => {
                message.status = update.status;
                message.status_reason = update.reason;
                message.updated_at = now;
                let id = message.id.to_string();
                if let Some(wa_id) = update.wa_id {
                    // Receipts later in this batch find the message by the id it just got.
                    by_wa_id.insert((message.session_id.clone(), wa_id.clone()), id.clone());
                    message.wa_id = Some(wa_id);
                }
                if update.status == MessageStatus::Queued {
                    requeued.push((id.clone(), update.retry_at.unwrap_or(now)));
                } else if update.status.is_send_result() {
                    finished.push(id.clone());
                }
                if !touched.contains(&id) {
                    touched.push(id);
                }
                // Index of the event this update will get.
                results.push(Ok(Some(changed.len())));
                changed.push(message.clone());
            }
        }
    }
    let touched: Vec<&Message> = touched.iter().filter_map(|id| messages.get(id)).collect();
    write_statuses(conn, &touched).await?;
    for (id, retry_at) in &requeued {
        sqlx::query(
            "UPDATE messages SET due_at = $1, attempts = attempts + 1, locked_until = NULL WHERE id = $2",
        )
        .bind(millis(*retry_at))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    let mut campaigns: Vec<&CampaignId> =
        finished.iter().filter_map(|id| messages.get(id)?.campaign_id.as_ref()).collect();
    campaigns.sort_unstable();
    campaigns.dedup();
    let changed: Vec<&Message> = changed.iter().collect();
    let events = status_events(conn, &changed, now).await?;
    let completed = super::campaigns::complete_finished(conn, &campaigns, now).await?;
    let mut results: Vec<StoreResult<Vec<Appended>>> = results
        .into_iter()
        .map(|result: StoreResult<Option<usize>>| {
            result.map(|index| index.map(|i| events[i].clone()).into_iter().collect())
        })
        .collect();
    // A campaign's completion goes with the update that finished it (the last in the batch).
    if let Some(Ok(last)) = results.iter_mut().rev().find(|r| r.is_ok()) {
        last.extend(completed);
    }
    Ok(results)
}

/// Claims due messages of several sessions: for each request up to `limit` of that session's
/// due messages in queue order ([`Claim::messages`]), marked `sending` and leased until `lease_until`. One answer per
/// request, in order, with the events it appended and when the session's next message can be
/// claimed.
pub(super) async fn claim(
    conn: &mut DbConn,
    requests: Vec<ClaimRequest>,
    now: Timestamp,
    lease_until: Timestamp,
) -> StoreResult<Vec<Claim>> {
    // One limit per session: a session asking twice in one batch is answered once.
    let mut limits: Vec<(&str, i64, i64)> = Vec::with_capacity(requests.len());
    for request in &requests {
        if !limits.iter().any(|(session, _, _)| *session == request.session_id.as_str()) {
            limits.push((request.session_id.as_str(), i64::from(request.limit), request.lease));
        }
    }
    // Pacing caps first: what must wait is made due later, so the claim below skips it.
    for request in &requests {
        for deferral in &request.defer {
            let mut sql = QueryBuilder::<Db>::new("UPDATE messages SET due_at = ");
            sql.push_bind(millis(deferral.until)).push(" WHERE session_id = ");
            sql.push_bind(request.session_id.as_str());
            sql.push(" AND due_at < ").push_bind(millis(deferral.until));
            if let Some(recipient) = &deferral.recipient {
                sql.push(" AND recipient = ").push_bind(recipient.as_str());
            }
            sql.build().execute(&mut *conn).await?;
        }
    }
    // The leases checked below stay as read until this claim is committed: a node taking a
    // session over waits for it, then finds the claimed rows locked until the lease ends.
    let mut sessions: Vec<&str> = limits.iter().map(|(session, _, _)| *session).collect();
    sessions.sort_unstable();
    for chunk in sessions.chunks(ROWS_PER_INSERT) {
        let mut sql = QueryBuilder::<Db>::new("SELECT session_id FROM session_leases WHERE session_id");
        push_list(&mut sql, chunk.iter().copied());
        sql.push(" ORDER BY session_id").push(dialect::FOR_SHARE);
        sql.build().execute(&mut *conn).await?;
    }
    // For each session the `limit` due messages that were due first, direct sends before
    // campaign messages, each read off the queue index in order and locked, while the claiming
    // node's lease is current (fencing a stale owner). The sessions are JSON rows
    // `[session, limit, lease]`: one statement text for any number of them.
    let due_of_session = |row: &str| {
        format!(
            "SELECT id FROM messages m WHERE session_id = {row} ->> 0 AND held = 0 AND due_at <= $2 \
             AND (locked_until IS NULL OR locked_until <= $2) \
             AND EXISTS (SELECT 1 FROM session_leases l WHERE l.session_id = m.session_id \
             AND l.token = CAST({row} ->> 2 AS BIGINT)) \
             ORDER BY bulk, due_at, id LIMIT CAST({row} ->> 1 AS BIGINT){}",
            dialect::SKIP_LOCKED
        )
    };
    let mut due: Vec<(Message, i64, (i64, i64))> = Vec::new();
    for chunk in limits.chunks(ROWS_PER_FOR_EACH) {
        let sql = format!(
            "SELECT {COLUMNS}, attempts, bulk, due_at FROM messages WHERE id IN ({})",
            dialect::for_each_json_row("$1", chunk.len(), due_of_session)
        );
        let rows = sqlx::query(&sql).bind(json_array(chunk)).bind(millis(now)).fetch_all(&mut *conn).await?;
        for row in rows {
            due.push((
                from_row(&row)?,
                row.try_get("attempts")?,
                (row.try_get("bulk")?, row.try_get("due_at")?),
            ));
        }
    }
    // In queue order, the order they are sent in.
    due.sort_by(|(a, _, a_place), (b, _, b_place)| (a_place, &a.id).cmp(&(b_place, &b.id)));
    // Each statement sees what was committed when it began (PostgreSQL's READ COMMITTED): a
    // message accepted after the deferrals above ran and before the claim read the queue is
    // read here. What a deferral covers waits all the same.
    let mut deferred: Vec<(String, Timestamp)> = Vec::new();
    due.retain(|(message, _, _)| {
        let until = requests
            .iter()
            .filter(|request| request.session_id == message.session_id)
            .flat_map(|request| &request.defer)
            .filter(|deferral| deferral.recipient.as_ref().is_none_or(|to| *to == message.to))
            .map(|deferral| deferral.until)
            .max()
            .filter(|until| *until > now);
        match until {
            Some(until) => {
                deferred.push((message.id.to_string(), until));
                false
            }
            None => true,
        }
    });
    for (id, until) in &deferred {
        sqlx::query("UPDATE messages SET due_at = $1 WHERE id = $2")
            .bind(millis(*until))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    // Leased and marked `sending` in one write per message.
    let mut claimed: HashMap<SessionId, Vec<Claimed>> = HashMap::new();
    let mut started: Vec<Message> = Vec::new();
    let mut leased: Vec<String> = Vec::with_capacity(due.len());
    let mut done: Vec<String> = Vec::new();
    for (mut message, attempts, _) in due {
        match message.status {
            MessageStatus::Queued | MessageStatus::Scheduled => {
                message.status = MessageStatus::Sending;
                message.status_reason = None;
                message.updated_at = now;
                started.push(message.clone());
            }
            // A claim whose lease ran out (the node stopped mid-send): the send is tried again.
            MessageStatus::Sending => {}
            // Already has its outcome: it should not have been waiting.
            _ => {
                done.push(message.id.to_string());
                continue;
            }
        }
        leased.push(message.id.to_string());
        let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
        claimed.entry(message.session_id.clone()).or_default().push(Claimed { message, attempts });
    }
    leased.sort_unstable();
    for chunk in leased.chunks(ROWS_PER_INSERT) {
        let mut sql = QueryBuilder::<Db>::new("UPDATE messages SET locked_until = ");
        sql.push_bind(millis(lease_until));
        sql.push(", updated_at = CASE WHEN status = 'sending' THEN updated_at ELSE ");
        sql.push_bind(millis(now));
        sql.push(" END, status = 'sending', status_reason = NULL WHERE id");
        push_list(&mut sql, chunk.iter().map(String::as_str));
        sql.build().execute(&mut *conn).await?;
    }
    for chunk in done.chunks(ROWS_PER_INSERT) {
        let mut sql =
            QueryBuilder::<Db>::new("UPDATE messages SET due_at = NULL, locked_until = NULL WHERE id");
        push_list(&mut sql, chunk.iter().map(String::as_str));
        sql.build().execute(&mut *conn).await?;
    }
    let next_due = next_due(conn, &limits, &claimed, now).await?;
    started.sort_by(|a, b| a.id.cmp(&b.id));
    let started: Vec<&Message> = started.iter().collect();
    let mut events: HashMap<Option<SessionId>, Vec<Appended>> = HashMap::new();
    for event in status_events(conn, &started, now).await? {
        events.entry(event.session_id.clone()).or_default().push(event);
    }
    Ok(requests
        .iter()
        .map(|request| Claim {
            messages: claimed.remove(&request.session_id).unwrap_or_default(),
            events: events.remove(&Some(request.session_id.clone())).unwrap_or_default(),
            next_due: next_due.get(request.session_id.as_str()).copied().flatten(),
        })
        .collect())
}

/// When each claiming session's next message not claimed now can be claimed (None: nothing
/// else waits). A session that took its whole limit may have more due now. For the others it
/// is the earliest moment one of their waiting messages is due and not leased, one statement
/// for them all, which reads few rows whatever waits: a session that did not take its limit
/// has no message due by now but leased ones (sends in flight), and of those due later the
/// first of each queue in due order (direct sends, campaign messages: `bulk` 0 and 1) is
/// the earliest, read off the queue index.
async fn next_due<'a>(
    conn: &mut DbConn,
    limits: &[(&'a str, i64, i64)],
    claimed: &HashMap<SessionId, Vec<Claimed>>,
    now: Timestamp,
) -> StoreResult<HashMap<&'a str, Option<Timestamp>>> {
    let claimed: HashMap<&str, &Vec<Claimed>> = claimed.iter().map(|(id, c)| (id.as_str(), c)).collect();
    let mut next: HashMap<&str, Option<Timestamp>> = HashMap::with_capacity(limits.len());
    let mut partial: Vec<(&str,)> = Vec::new();
    for &(session, limit, _) in limits {
        let taken = claimed.get(session).map_or(0, |c| c.len());
        if i64::try_from(taken).unwrap_or(i64::MAX) >= limit {
            next.insert(session, Some(now));
        } else {
            next.insert(session, None);
            partial.push((session,));
        }
    }
    // A leased message can be claimed again when its lease ends; the ones just claimed are
    // being sent. Another is due at its `due_at`.
    let [among, among_end] = dialect::AMONG;
    let just_claimed = json_text_elements("$3");
    let first_due_later = |row: &str, bulk: u8| {
        format!(
            "SELECT MIN(due_at) FROM messages WHERE session_id = {row} ->> 0 AND held = 0 \
             AND bulk = {bulk} AND due_at > $2"
        )
    };
    let next_of_session = |row: &str| {
        format!(
            "SELECT {row} ->> 0 AS session_id, MIN(at) AS next_due FROM (\
             SELECT CASE WHEN locked_until > due_at THEN locked_until ELSE due_at END AS at \
             FROM messages WHERE session_id = {row} ->> 0 AND held = 0 AND bulk IN (0, 1) \
             AND due_at <= $2 AND NOT (id{among}SELECT value FROM {just_claimed}{among_end}) \
             UNION ALL {} UNION ALL {}) AS waiting",
            first_due_later(row, 0),
            first_due_later(row, 1)
        )
    };
    for chunk in partial.chunks(ROWS_PER_FOR_EACH) {
        let ids: Vec<&str> = chunk
            .iter()
            .filter_map(|(session,)| claimed.get(session))
            .flat_map(|c| c.iter().map(|c| c.message.id.as_str()))
            .collect();
        let sql = dialect::for_each_json_row("$1", chunk.len(), next_of_session);
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(&sql)
            .bind(json_array(chunk))
            .bind(millis(now))
            .bind(json_array(&ids))
            .fetch_all(&mut *conn)
            .await?;
        for (session, due) in rows {
            if let (Some((session,)), Some(due)) = (chunk.iter().find(|(s,)| *s == session), due) {
                next.insert(session, Some(from_millis(due)?));
            }
        }
    }
    Ok(next)
}
