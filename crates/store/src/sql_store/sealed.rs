//! Every sealed secret, page by page, and its replacement under a new key.

use super::{Backend, SqlStore};
use crate::rows::Columns;
use crate::sql::{query, Exec, Query, Row};
use async_trait::async_trait;
use tweestap_domain::factor::FactorId;
use tweestap_domain::store::{
    Resealed, SealedAt, SealedKind, SealedStore, SealedValue, StoreError, StoreResult,
};

/// Where `kind` is kept: table, id column, value column.
fn place(kind: SealedKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        SealedKind::FactorSecret => ("factors", "id", "secret_sealed"),
        SealedKind::SigningKey => ("oidc_signing_keys", "kid", "private_sealed"),
        SealedKind::MailPayload => ("mail_queue", "id", "payload"),
    }
}

fn kind_of(at: &SealedAt) -> SealedKind {
    match at {
        SealedAt::Factor(_) => SealedKind::FactorSecret,
        SealedAt::SigningKey(_) => SealedKind::SigningKey,
        SealedAt::Mail(_) => SealedKind::MailPayload,
    }
}

fn bind_id(q: Query, at: &SealedAt) -> Query {
    match at {
        SealedAt::Factor(id) => q.bind(id.0),
        SealedAt::SigningKey(kid) => q.bind(kid.as_str()),
        SealedAt::Mail(id) => q.bind(*id),
    }
}

/// The value as the column holds it: bytes, or (mail) UTF-8 text.
fn bind_value(q: Query, kind: SealedKind, value: &[u8]) -> StoreResult<Query> {
    Ok(match kind {
        SealedKind::MailPayload => q.bind(
            std::str::from_utf8(value)
                .map_err(|e| StoreError::Corrupt(format!("a mail payload is not UTF-8: {e}")))?,
        ),
        SealedKind::FactorSecret | SealedKind::SigningKey => q.bind(&value.to_vec()),
    })
}

fn value_from(kind: SealedKind, row: &Row) -> StoreResult<SealedValue> {
    let (_, id, column) = place(kind);
    Ok(match kind {
        SealedKind::FactorSecret => SealedValue {
            at: SealedAt::Factor(FactorId(row.uuid(id)?)),
            value: row.bytes(column)?,
        },
        SealedKind::SigningKey => SealedValue {
            at: SealedAt::SigningKey(row.text(id)?),
            value: row.bytes(column)?,
        },
        SealedKind::MailPayload => SealedValue {
            at: SealedAt::Mail(row.uuid(id)?),
            value: row.text(column)?.into_bytes(),
        },
    })
}

#[async_trait]
impl<B: Backend> SealedStore for SqlStore<B> {
    async fn sealed_values(
        &self,
        kind: SealedKind,
        after: Option<&SealedAt>,
        limit: u32,
    ) -> StoreResult<Vec<SealedValue>> {
        let (table, id, column) = place(kind);
        let q = match after {
            Some(at) => {
                if kind_of(at) != kind {
                    return Err(StoreError::Other(format!(
                        "a page of {} cannot follow {at:?}",
                        kind.as_str()
                    )));
                }
                bind_id(
                    query(format!(
                        "SELECT {id}, {column} FROM {table} WHERE {id} > $1 ORDER BY {id} LIMIT $2"
                    )),
                    at,
                )
            }
            None => query(format!(
                "SELECT {id}, {column} FROM {table} ORDER BY {id} LIMIT $1"
            )),
        }
        .bind(i64::from(limit));
        let rows = self.db().fetch_all(q).await?;
        rows.iter().map(|r| value_from(kind, r)).collect()
    }

    async fn replace_sealed(&self, batch: &[Resealed]) -> StoreResult<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db().begin().await?;
        let mut changed = 0;
        for r in batch {
            let kind = kind_of(&r.at);
            let (table, id, column) = place(kind);
            let q = query(format!(
                "UPDATE {table} SET {column} = $1 WHERE {id} = $2 AND {column} = $3"
            ));
            let q = bind_value(q, kind, &r.new)?;
            let q = bind_id(q, &r.at);
            let q = bind_value(q, kind, &r.old)?;
            changed += (&mut tx).execute(q).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}
