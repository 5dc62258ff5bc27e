//! How values are kept in the database, the same on both backends: times as milliseconds
//! since the Unix epoch, JSON as text, and `IN` lists of bound values.

use sqlx::QueryBuilder;
use wagate_core::Timestamp;

use super::Db;
use crate::{StoreError, StoreResult};

/// Appends `(?, ?, …)` binding each value: the list of an `IN`.
pub(crate) fn push_list<'a>(sql: &mut QueryBuilder<'a, Db>, values: impl IntoIterator<Item = &'a str>) {
    sql.push("(");
    let mut list = sql.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    sql.push(")");
}

pub(crate) fn millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> StoreResult<Timestamp> {
    chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value}"))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
