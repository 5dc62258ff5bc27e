//! How values are kept in the database, the same on both backends: times as milliseconds
//! since the Unix epoch, JSON as text; and many values in one statement: bound as one JSON
//! array.
//!
//! A statement whose text is the same for 1 value or 500 is prepared once per connection. One
//! with a placeholder per value (`IN (?, ?, …)`, `VALUES (…), (…)`) is a new statement for
//! every count: PostgreSQL parsed and planned each again (an event insert's plan took 3 ms),
//! and each cost two more round trips, to prepare it and to evict an older one from the
//! connection's cache of prepared statements. The writes of a send and the `IN` lists bind
//! JSON; the upserts of contacts, chats and device keys, rarer, still bind a `VALUES` row each.

use serde::Serialize;
use sqlx::QueryBuilder;
use wagate_core::Timestamp;

use super::{dialect, Db, DbConn};
use crate::{StoreError, StoreResult};

/// Rows per statement that binds many (as one JSON array: [`json_array`]), which bounds the
/// size of one statement's JSON.
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// JSON rows per statement of `dialect::for_each_json_row` (on SQLite a compound SELECT of one
/// term per row, and SQLite allows 500 terms in one).
pub(crate) const ROWS_PER_FOR_EACH: usize = 100;

/// Appends ` IN (…)` (in effect) over `values` bound as one JSON array; the caller has written
/// the column before it.
pub(crate) fn push_list<'a>(sql: &mut QueryBuilder<'a, Db>, values: impl IntoIterator<Item = &'a str>) {
    push_json_list(sql, "value", values.into_iter().collect::<Vec<_>>());
}

/// [`push_list`] for integers.
pub(crate) fn push_numbers(sql: &mut QueryBuilder<'_, Db>, values: impl IntoIterator<Item = i64>) {
    push_json_list(sql, "CAST(value AS BIGINT)", values.into_iter().collect::<Vec<_>>());
}

/// The elements of the JSON array of strings `array` (as `value`, text), as a table.
pub(crate) fn json_text_elements(array: &str) -> String {
    let [open, close] = dialect::JSON_TEXT_ELEMENTS;
    format!("{open}{array}{close}")
}

fn push_json_list<T: Serialize>(sql: &mut QueryBuilder<'_, Db>, element: &str, values: Vec<T>) {
    let [among, among_end] = dialect::AMONG;
    let [elements, elements_end] = dialect::JSON_TEXT_ELEMENTS;
    sql.push(format_args!("{among}SELECT {element} FROM {elements}"))
        .push_bind(json_array(&values))
        .push(format_args!("{elements_end}{among_end}"));
}

/// Runs `sql`, which reads its rows from the JSON array `$1` (`dialect::json_rows`), over
/// `rows` in statements of [`ROWS_PER_INSERT`], each row's values as `values` gives them.
pub(crate) async fn execute_rows<'a, T, R: Serialize>(
    conn: &mut DbConn,
    sql: &str,
    rows: &'a [T],
    values: impl Fn(&'a T) -> R,
) -> StoreResult<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let chunk: Vec<R> = chunk.iter().map(&values).collect();
        sqlx::query(sql).bind(json_array(&chunk)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows for a statement that reads them from one JSON array (`dialect::json_rows`): each row an
/// array of its values, read as `r.value ->> 0`, `r.value ->> 1`, ….
pub(crate) fn json_array<T: Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("strings, integers, options and tuples of them serialize")
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
