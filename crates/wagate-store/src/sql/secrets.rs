//! The sealed columns (device keys, session credentials, webhook secrets): where each value's
//! seal binds it, opening what is read, and sealing again under the current master key (after
//! an upgrade from plaintext, or a rotation).
//!
//! A value whose key id is NULL is plaintext from before sealing: it is read as it is, and
//! sealed when the store opens (a node of an earlier version may still write such rows during
//! a rolling upgrade).

use sqlx::Row;

use super::{begin, Backend, DbConn};
use crate::keyring::{KeyError, Keyring};
use crate::StoreResult;

/// Which sealed values to seal again under the current key.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reseal {
    /// Those stored in plaintext (from before sealing).
    Plaintext,
    /// Every one not sealed under the current key (after a rotation).
    All,
}

/// Rows sealed again per transaction.
const PAGE: i64 = 500;

/// What a device key's seal binds it to: its session, kind and key.
pub(super) fn device_key_row(session: &str, kind: &str, key: &str) -> Vec<u8> {
    format!("device_keys\0{session}\0{kind}\0{key}").into_bytes()
}

/// What a session's credentials are bound to: the session.
pub(super) fn credentials_row(session: &str) -> Vec<u8> {
    format!("sessions.credentials\0{session}").into_bytes()
}

/// What a webhook's secrets (current and previous) are bound to: the webhook.
pub(super) fn webhook_row(webhook: &str) -> Vec<u8> {
    format!("webhooks.secret\0{webhook}").into_bytes()
}

/// The plaintext of a binary column.
pub(super) fn open_bytes(
    keyring: &Keyring,
    key_id: Option<&str>,
    value: Vec<u8>,
    row: &[u8],
) -> StoreResult<Vec<u8>> {
    match key_id {
        Some(id) => Ok(keyring.open(id, &value, row)?),
        None => Ok(value),
    }
}

/// The plaintext of a text column.
pub(super) fn open_text(
    keyring: &Keyring,
    key_id: Option<&str>,
    value: String,
    row: &[u8],
) -> StoreResult<String> {
    match key_id {
        Some(id) => {
            let bytes = keyring.open_text(id, &value, row)?;
            String::from_utf8(bytes).map_err(|_| KeyError::Tampered(id.to_owned()).into())
        }
        None => Ok(value),
    }
}

/// Checks that the keyring holds every key the database's values are sealed with, then seals
/// the plaintext ones: what a store does when it opens.
pub(super) async fn on_open(store: &Backend) -> StoreResult<()> {
    let keyring = store.keyring();
    let used = key_ids(store).await?;
    if let Some(missing) = used.iter().find(|id| !keyring.knows(id)) {
        return Err(KeyError::Unknown(missing.clone()).into());
    }
    let sealed = reseal(store, Reseal::Plaintext).await?;
    if sealed > 0 {
        tracing::info!(sealed, key = %keyring.current(), "sealed the secrets stored in plaintext");
    }
    Ok(())
}

/// The ids of the master keys the stored secrets are sealed with.
pub(super) async fn key_ids(store: &Backend) -> StoreResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT key_id FROM device_keys WHERE key_id IS NOT NULL \
         UNION SELECT credentials_key_id FROM sessions WHERE credentials_key_id IS NOT NULL \
         UNION SELECT secret_key_id FROM webhooks WHERE secret_key_id IS NOT NULL \
         UNION SELECT previous_secret_key_id FROM webhooks WHERE previous_secret_key_id IS NOT NULL",
    )
    .fetch_all(store.readers())
    .await?)
}

/// Seals again, under the keyring's current key, the values `which` names; answers how many.
/// One pass over each table in key order, a page per transaction: values written meanwhile by
/// a node still sealing with an earlier key keep that key (run it again once every node has
/// the new one).
pub(super) async fn reseal(store: &Backend, which: Reseal) -> StoreResult<u64> {
    let keyring = store.keyring();
    // The rows to take, by the key id column: plaintext ones (no key id: `$1` is ''), or every
    // one not under the current key (`$1`).
    let (stale, current) = match which {
        Reseal::Plaintext => ("=", String::new()),
        Reseal::All => ("<>", keyring.current().as_str().to_owned()),
    };
    let stale = |column: &str| format!("COALESCE({column}, '') {stale} $1");
    let mut count = 0;

    let mut after = (String::new(), String::new(), String::new());
    loop {
        let sql = format!(
            "SELECT session_id, kind, key, value, key_id FROM device_keys \
             WHERE (session_id, kind, key) > ($2, $3, $4) AND {} ORDER BY session_id, kind, key LIMIT $5",
            stale("key_id")
        );
        let rows = sqlx::query(&sql)
            .bind(&current)
            .bind(&after.0)
            .bind(&after.1)
            .bind(&after.2)
            .bind(PAGE)
            .fetch_all(store.readers())
            .await?;
        let Some(last) = rows.last() else { break };
        after = (last.try_get("session_id")?, last.try_get("kind")?, last.try_get("key")?);
        let mut writer = store.writer().await?;
        let mut tx = begin(&mut writer).await?;
        for row in &rows {
            let (session, kind, key): (String, String, String) =
                (row.try_get("session_id")?, row.try_get("kind")?, row.try_get("key")?);
            let stored: Vec<u8> = row.try_get("value")?;
            let key_id: Option<String> = row.try_get("key_id")?;
            let place = device_key_row(&session, &kind, &key);
            let sealed =
                keyring.seal(&open_bytes(keyring, key_id.as_deref(), stored.clone(), &place)?, &place);
            count += sqlx::query(
                "UPDATE device_keys SET value = $1, key_id = $2 \
                 WHERE session_id = $3 AND kind = $4 AND key = $5 AND value = $6",
            )
            .bind(&sealed.bytes)
            .bind(sealed.key_id.as_str())
            .bind(&session)
            .bind(&kind)
            .bind(&key)
            .bind(&stored)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
    }

    let mut after = String::new();
    loop {
        let sql = format!(
            "SELECT id, credentials, credentials_key_id FROM sessions \
             WHERE id > $2 AND credentials IS NOT NULL AND {} ORDER BY id LIMIT $3",
            stale("credentials_key_id")
        );
        let rows =
            sqlx::query(&sql).bind(&current).bind(&after).bind(PAGE).fetch_all(store.readers()).await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id")?;
        let mut writer = store.writer().await?;
        let mut tx = begin(&mut writer).await?;
        for row in &rows {
            let id: String = row.try_get("id")?;
            let stored: String = row.try_get("credentials")?;
            let key_id: Option<String> = row.try_get("credentials_key_id")?;
            let place = credentials_row(&id);
            let plain = open_text(keyring, key_id.as_deref(), stored.clone(), &place)?;
            let sealed = keyring.seal(plain.as_bytes(), &place);
            count += sqlx::query(
                "UPDATE sessions SET credentials = $1, credentials_key_id = $2 WHERE id = $3 AND credentials = $4",
            )
            .bind(sealed.to_text())
            .bind(sealed.key_id.as_str())
            .bind(&id)
            .bind(&stored)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
    }

    let mut after = String::new();
    loop {
        let sql = format!(
            "SELECT id, secret, secret_key_id, previous_secret, previous_secret_key_id FROM webhooks \
             WHERE id > $2 AND ({} OR (previous_secret IS NOT NULL AND {})) ORDER BY id LIMIT $3",
            stale("secret_key_id"),
            stale("previous_secret_key_id")
        );
        let rows =
            sqlx::query(&sql).bind(&current).bind(&after).bind(PAGE).fetch_all(store.readers()).await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id")?;
        let mut writer = store.writer().await?;
        let mut tx = begin(&mut writer).await?;
        for row in &rows {
            count += reseal_webhook(&mut tx, keyring, row).await?;
        }
        tx.commit().await?;
    }
    Ok(count)
}

async fn reseal_webhook(conn: &mut DbConn, keyring: &Keyring, row: &super::DbRow) -> StoreResult<u64> {
    let id: String = row.try_get("id")?;
    let place = webhook_row(&id);
    let secret: String = row.try_get("secret")?;
    let secret_key: Option<String> = row.try_get("secret_key_id")?;
    let previous: Option<String> = row.try_get("previous_secret")?;
    let previous_key: Option<String> = row.try_get("previous_secret_key_id")?;
    let sealed =
        keyring.seal(open_text(keyring, secret_key.as_deref(), secret.clone(), &place)?.as_bytes(), &place);
    let sealed_previous = previous
        .clone()
        .map(|p| {
            open_text(keyring, previous_key.as_deref(), p, &place).map(|p| keyring.seal(p.as_bytes(), &place))
        })
        .transpose()?;
    Ok(sqlx::query(
        "UPDATE webhooks SET secret = $1, secret_key_id = $2, previous_secret = $3, previous_secret_key_id = $4 \
         WHERE id = $5 AND secret = $6 AND (previous_secret = $7 OR (previous_secret IS NULL AND $7 IS NULL))",
    )
    .bind(sealed.to_text())
    .bind(sealed.key_id.as_str())
    .bind(sealed_previous.as_ref().map(|s| s.to_text()))
    .bind(sealed_previous.as_ref().map(|s| s.key_id.as_str().to_owned()))
    .bind(&id)
    .bind(&secret)
    .bind(&previous)
    .execute(conn)
    .await?
    .rows_affected())
}
