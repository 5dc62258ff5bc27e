//! What connectors keep for each session's device: values by (session, kind, key).
//!
//! Values are sealed under the master key (`secrets.rs`): a device's keys are its WhatsApp
//! identity. Writes are the session's own: one node runs a session.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row};
use wagate_core::SessionId;

use async_trait::async_trait;
use wagate_core::{DeviceKey, DeviceKeys, DeviceKeysResult};

use super::secrets::{device_key_row, open_bytes};
use super::{begin, push_list, Backend, Db, DbConn, DbPool, DbRow};
use crate::keyring::{Keyring, Sealed};
use crate::StoreResult;

/// Rows per statement: 6 bound values each, well under both databases' limits.
const ROWS_PER_STATEMENT: usize = 1000;

const COLUMNS: &str = "kind, key, value, key_id, number";

fn from_row(row: &DbRow, keyring: &Keyring, session: &SessionId) -> StoreResult<DeviceKey> {
    let kind: String = row.try_get("kind")?;
    let key: String = row.try_get("key")?;
    let key_id: Option<String> = row.try_get("key_id")?;
    let place = device_key_row(session.as_str(), &kind, &key);
    let value = open_bytes(keyring, key_id.as_deref(), row.try_get("value")?, &place)?;
    Ok(DeviceKey { kind, key, value, number: row.try_get("number")? })
}

pub(super) async fn get(
    pool: &DbPool,
    keyring: &Keyring,
    session: &SessionId,
    kind: &str,
    keys: &[&str],
) -> StoreResult<Vec<DeviceKey>> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut sql =
            QueryBuilder::<Db>::new(format!("SELECT {COLUMNS} FROM device_keys WHERE session_id = "));
        sql.push_bind(session.as_str()).push(" AND kind = ").push_bind(kind).push(" AND key");
        push_list(&mut sql, chunk.iter().copied());
        for row in sql.build().fetch_all(pool).await? {
            found.push(from_row(&row, keyring, session)?);
        }
    }
    Ok(found)
}

pub(super) async fn scan(
    pool: &DbPool,
    keyring: &Keyring,
    session: &SessionId,
    kind: &str,
    prefix: &str,
) -> StoreResult<Vec<DeviceKey>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM device_keys \
         WHERE session_id = $1 AND kind = $2 AND substr(key, 1, length($3)) = $3 ORDER BY key"
    ))
    .bind(session.as_str())
    .bind(kind)
    .bind(prefix)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|row| from_row(row, keyring, session)).collect()
}

pub(super) async fn any(
    pool: &DbPool,
    session: &SessionId,
    kinds: &[&str],
    prefixes: &[&str],
) -> StoreResult<bool> {
    if kinds.is_empty() || prefixes.is_empty() {
        return Ok(false);
    }
    let mut sql = QueryBuilder::<Db>::new("SELECT 1 FROM device_keys WHERE session_id = ");
    sql.push_bind(session.as_str()).push(" AND kind");
    push_list(&mut sql, kinds.iter().copied());
    sql.push(" AND (");
    for (i, prefix) in prefixes.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("substr(key, 1, length(").push_bind(*prefix).push(")) = ").push_bind(*prefix);
    }
    sql.push(") LIMIT 1");
    Ok(sql.build().fetch_optional(pool).await?.is_some())
}

pub(super) async fn put(
    conn: &mut DbConn,
    keyring: &Keyring,
    session: &SessionId,
    keys: Vec<DeviceKey>,
) -> StoreResult<()> {
    // One statement may not touch a row twice (PostgreSQL refuses): the last value of a key wins.
    let mut last: HashMap<(String, String), usize> = HashMap::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        last.insert((key.kind.clone(), key.key.clone()), i);
    }
    let rows: Vec<(&DeviceKey, Sealed)> = keys
        .iter()
        .enumerate()
        .filter(|(i, k)| last[&(k.kind.clone(), k.key.clone())] == *i)
        .map(|(_, k)| {
            let sealed = keyring.seal(&k.value, &device_key_row(session.as_str(), &k.kind, &k.key));
            (k, sealed)
        })
        .collect();
    let mut tx = begin(conn).await?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Db>::new(
            "INSERT INTO device_keys (session_id, kind, key, value, key_id, number) ",
        );
        sql.push_values(chunk, |mut row, (key, sealed)| {
            row.push_bind(session.as_str())
                .push_bind(key.kind.as_str())
                .push_bind(key.key.as_str())
                .push_bind(sealed.bytes.as_slice())
                .push_bind(sealed.key_id.as_str())
                .push_bind(key.number);
        });
        sql.push(
            " ON CONFLICT (session_id, kind, key) DO UPDATE \
             SET value = excluded.value, key_id = excluded.key_id, number = excluded.number",
        );
        sql.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete(
    conn: &mut DbConn,
    session: &SessionId,
    kind: &str,
    keys: &[&str],
) -> StoreResult<u64> {
    let mut deleted = 0;
    let mut tx = begin(conn).await?;
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Db>::new("DELETE FROM device_keys WHERE session_id = ");
        sql.push_bind(session.as_str()).push(" AND kind = ").push_bind(kind).push(" AND key");
        push_list(&mut sql, chunk.iter().copied());
        deleted += sql.build().execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(deleted)
}

pub(super) async fn delete_by_prefix(
    conn: &mut DbConn,
    session: &SessionId,
    kind: &str,
    prefix: &str,
) -> StoreResult<u64> {
    Ok(sqlx::query(
        "DELETE FROM device_keys WHERE session_id = $1 AND kind = $2 AND substr(key, 1, length($3)) = $3",
    )
    .bind(session.as_str())
    .bind(kind)
    .bind(prefix)
    .execute(conn)
    .await?
    .rows_affected())
}

pub(super) async fn expire(
    conn: &mut DbConn,
    session: &SessionId,
    kind: &str,
    before: i64,
) -> StoreResult<u64> {
    Ok(sqlx::query(
        "DELETE FROM device_keys WHERE session_id = $1 AND kind = $2 AND number > 0 AND number < $3",
    )
    .bind(session.as_str())
    .bind(kind)
    .bind(before)
    .execute(conn)
    .await?
    .rows_affected())
}

pub(super) async fn set_numbers(
    conn: &mut DbConn,
    session: &SessionId,
    kind: &str,
    keys: &[&str],
    number: i64,
) -> StoreResult<()> {
    let mut tx = begin(conn).await?;
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Db>::new("UPDATE device_keys SET number = ");
        sql.push_bind(number).push(" WHERE session_id = ").push_bind(session.as_str());
        sql.push(" AND kind = ").push_bind(kind).push(" AND key");
        push_list(&mut sql, chunk.iter().copied());
        sql.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn take(
    conn: &mut DbConn,
    keyring: &Keyring,
    session: &SessionId,
    kind: &str,
    key: &str,
) -> StoreResult<Option<DeviceKey>> {
    let row = sqlx::query(&format!(
        "DELETE FROM device_keys WHERE session_id = $1 AND kind = $2 AND key = $3 RETURNING {COLUMNS}"
    ))
    .bind(session.as_str())
    .bind(kind)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(|row| from_row(row, keyring, session)).transpose()
}

pub(super) async fn clear(conn: &mut DbConn, session: &SessionId) -> StoreResult<()> {
    sqlx::query("DELETE FROM device_keys WHERE session_id = $1").bind(session.as_str()).execute(conn).await?;
    Ok(())
}

// The trait is core's and answers its own error; the queries above answer the store's, which
// converts.
#[async_trait]
impl DeviceKeys for Backend {
    async fn get_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
    ) -> DeviceKeysResult<Vec<DeviceKey>> {
        Ok(get(self.readers(), self.keyring(), session, kind, keys).await?)
    }

    async fn scan_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        prefix: &str,
    ) -> DeviceKeysResult<Vec<DeviceKey>> {
        Ok(scan(self.readers(), self.keyring(), session, kind, prefix).await?)
    }

    async fn any_device_key(
        &self,
        session: &SessionId,
        kinds: &[&str],
        prefixes: &[&str],
    ) -> DeviceKeysResult<bool> {
        Ok(any(self.readers(), session, kinds, prefixes).await?)
    }

    async fn put_device_keys(&self, session: &SessionId, keys: Vec<DeviceKey>) -> DeviceKeysResult<()> {
        Ok(put(&mut *self.writer().await?, self.keyring(), session, keys).await?)
    }

    async fn delete_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
    ) -> DeviceKeysResult<u64> {
        Ok(delete(&mut *self.writer().await?, session, kind, keys).await?)
    }

    async fn delete_device_keys_by_prefix(
        &self,
        session: &SessionId,
        kind: &str,
        prefix: &str,
    ) -> DeviceKeysResult<u64> {
        Ok(delete_by_prefix(&mut *self.writer().await?, session, kind, prefix).await?)
    }

    async fn expire_device_keys(
        &self,
        session: &SessionId,
        kind: &str,
        before: i64,
    ) -> DeviceKeysResult<u64> {
        Ok(expire(&mut *self.writer().await?, session, kind, before).await?)
    }

    async fn set_device_key_numbers(
        &self,
        session: &SessionId,
        kind: &str,
        keys: &[&str],
        number: i64,
    ) -> DeviceKeysResult<()> {
        Ok(set_numbers(&mut *self.writer().await?, session, kind, keys, number).await?)
    }

    async fn take_device_key(
        &self,
        session: &SessionId,
        kind: &str,
        key: &str,
    ) -> DeviceKeysResult<Option<DeviceKey>> {
        Ok(take(&mut *self.writer().await?, self.keyring(), session, kind, key).await?)
    }

    async fn clear_device_keys(&self, session: &SessionId) -> DeviceKeysResult<()> {
        Ok(clear(&mut *self.writer().await?, session).await?)
    }
}
