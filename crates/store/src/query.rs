//! A query written once for both databases: its text with `$N` placeholders and its
//! arguments as [`Value`]s, bound each backend's way.

use crate::rows;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};
use tweestap_domain::account::AccountId;
use uuid::Uuid;

/// One argument of a query, each kind optional so that a NULL keeps its type.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bytes(Option<Vec<u8>>),
    Time(Option<DateTime<Utc>>),
    Id(Option<Uuid>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<&Vec<u8>> for Value {
    fn from(v: &Vec<u8>) -> Self {
        Value::Bytes(Some(v.clone()))
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Time(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Value {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Value::Time(v)
    }
}
impl From<Uuid> for Value {
    fn from(v: Uuid) -> Self {
        Value::Id(Some(v))
    }
}
impl From<Option<Uuid>> for Value {
    fn from(v: Option<Uuid>) -> Self {
        Value::Id(v)
    }
}
impl From<AccountId> for Value {
    fn from(v: AccountId) -> Self {
        Value::Id(Some(v.0))
    }
}
impl From<Option<AccountId>> for Value {
    fn from(v: Option<AccountId>) -> Self {
        Value::Id(v.map(|a| a.0))
    }
}

/// A query text and its arguments, in `$N` order.
#[derive(Debug)]
pub(crate) struct Query {
    pub(crate) sql: String,
    args: Vec<Value>,
    lazy_commit: bool,
}

/// Starts a query; add its arguments with [`Query::bind`].
pub(crate) fn query(sql: impl Into<String>) -> Query {
    Query {
        sql: sql.into(),
        args: Vec::new(),
        lazy_commit: false,
    }
}

impl Query {
    /// Whether the statement only reads, so that any connection may run it (and
    /// run it again). Anything else, `WITH … UPDATE` included, counts as a write.
    pub(crate) fn only_reads(&self) -> bool {
        self.sql
            .trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("SELECT"))
    }

    /// Marks a write whose commit need not wait for the disk (on PostgreSQL
    /// `synchronous_commit = off`; SQLite's commits never wait for it). Only for
    /// a write that no answer rests on unless a later write of the same request,
    /// one that waits, comes before that answer: PostgreSQL flushes its log in
    /// order, so that write's wait makes this one durable too. Until then (at
    /// most three times PostgreSQL's `wal_writer_delay`, 600 ms by default)
    /// only a crash of PostgreSQL or of its machine, or a fail-over, can lose it;
    /// a crash of a node cannot. In a caller's transaction it commits with that,
    /// as the transaction does.
    pub(crate) fn commit_lazily(mut self) -> Self {
        self.lazy_commit = true;
        self
    }

    /// Whether [`Self::commit_lazily`] marked it.
    pub(crate) fn commits_lazily(&self) -> bool {
        self.lazy_commit
    }

    pub(crate) fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }

    pub(crate) fn sqlite(
        &self,
    ) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
        self.args
            .iter()
            .fold(sqlx::query(&self.sql), |q, v| match v {
                Value::Text(t) => q.bind(t.as_deref()),
                Value::Int(i) => q.bind(*i),
                Value::Bytes(b) => q.bind(b.as_deref()),
                Value::Time(t) => q.bind(t.map(sqlite_time)),
                Value::Id(u) => q.bind(u.map(|u| u.hyphenated().to_string())),
            })
    }

    /// The arguments as SQLite has them from [`Query::sqlite`], for a read run on
    /// a connection of our own (`sqlite_inline`).
    pub(crate) fn rusqlite_values(&self) -> impl Iterator<Item = rusqlite::types::Value> + '_ {
        use rusqlite::types::Value as V;
        self.args.iter().map(|v| match v {
            Value::Text(t) => t.clone().map_or(V::Null, V::Text),
            Value::Int(i) => i.map_or(V::Null, V::Integer),
            Value::Bytes(b) => b.clone().map_or(V::Null, V::Blob),
            Value::Time(t) => t.map_or(V::Null, |t| V::Text(sqlite_time(t))),
            Value::Id(u) => u.map_or(V::Null, |u| V::Text(u.hyphenated().to_string())),
        })
    }

    pub(crate) fn postgres(&self) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
        self.args
            .iter()
            .fold(sqlx::query(&self.sql), |q, v| match v {
                Value::Text(t) => q.bind(t.as_deref()),
                Value::Int(i) => q.bind(*i),
                Value::Bytes(b) => q.bind(b.as_deref()),
                Value::Time(t) => q.bind(t.map(rows::micros)),
                Value::Id(u) => q.bind(*u),
            })
    }
}

/// `($1, …, $cols), (…)`: `rows` rows of `cols` parameters, numbered on.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

/// Times in SQLite are RFC 3339 text in UTC with exactly six fractional digits, so
/// that text order is time order; the digits beyond are dropped, as
/// [`rows::micros`] does on PostgreSQL.
fn sqlite_time(t: DateTime<Utc>) -> String {
    rows::micros(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_every_row_on() {
        assert_eq!(super::placeholders(1, 1), "($1)");
        assert_eq!(super::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
