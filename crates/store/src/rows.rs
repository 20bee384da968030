//! Row-to-domain conversion shared by every backend.
//!
//! Each backend says how to read one column as text, an integer, bytes, a time or a
//! UUID ([`Columns`]); turning those into accounts, factors, sessions and audit
//! records is written once here, so the backends cannot drift apart.

use chrono::{DateTime, Timelike, Utc};
use tweestap_domain::account::{Account, AccountId, Email, Role};
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::device::RememberedDevice;
use tweestap_domain::enrollment::{EnrollmentLink, LinkPurpose};
use tweestap_domain::factor::{Factor, FactorId, FactorKind};
use tweestap_domain::lockout::Guard;
use tweestap_domain::mail::{Language, QueuedMail};
use tweestap_domain::oidc::backchannel::QueuedLogout;
use tweestap_domain::oidc::consent::Consent;
use tweestap_domain::oidc::flow::{StoredCode, StoredToken, TokenKind};
use tweestap_domain::oidc::{ClientSource, OidcClient, SigningAlg, SigningKey};
use tweestap_domain::recovery::StoredRecoveryCode;
use tweestap_domain::session::{Session, SessionStage};
use tweestap_domain::session_code::{CodePurpose, SessionCode};
use tweestap_domain::store::{StoreError, StoreResult};
use tweestap_domain::token::TokenHash;
use uuid::Uuid;

/// Reads one column of a result row in the backend's own representation; a NULL
/// where a value must be is corrupt data.
pub(crate) trait Columns {
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>>;
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>>;
    fn opt_time(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>>;
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<Uuid>>;

    fn text(&self, name: &str) -> StoreResult<String> {
        self.opt_text(name)?.ok_or_else(|| null(name))
    }
    fn int(&self, name: &str) -> StoreResult<i64> {
        self.opt_int(name)?.ok_or_else(|| null(name))
    }
    fn time(&self, name: &str) -> StoreResult<DateTime<Utc>> {
        self.opt_time(name)?.ok_or_else(|| null(name))
    }
    fn uuid(&self, name: &str) -> StoreResult<Uuid> {
        self.opt_uuid(name)?.ok_or_else(|| null(name))
    }
    /// A text column that names one of a domain type's values.
    fn parsed<T>(&self, name: &str, parse: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
        let text = self.text(name)?;
        parse(&text).ok_or_else(|| StoreError::Corrupt(format!("{name} {text:?}")))
    }
}

fn null(column: &str) -> StoreError {
    StoreError::Corrupt(format!("{column} is NULL"))
}

/// A time as SQLite keeps it (RFC 3339 text: see `query::sqlite_time`).
pub(crate) fn parse_sqlite_time(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

/// An id as SQLite keeps it (hyphenated text).
pub(crate) fn parse_uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("id {s:?}: {e}")))
}

/// Times are stored at microsecond precision on every backend; this drops the rest
/// (rounding down, also before 1970) so that what is read back is the same everywhere.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.nanosecond();
    t.with_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}

/// The columns of a guard's counter and lock (fixed names, never user input).
pub(crate) fn guard_columns(guard: Guard) -> (&'static str, &'static str) {
    match guard {
        Guard::Code => ("code_failures", "code_locked_until"),
        Guard::Password => ("password_failures", "password_locked_until"),
    }
}

/// A stored failure counter as the domain's `u32` (saturating).
pub(crate) fn count(n: i64) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

pub(crate) fn account_from(row: &impl Columns) -> StoreResult<Account> {
    Ok(Account {
        id: AccountId(row.uuid("id")?),
        email: row.parsed("email", |s| Email::parse(s).ok())?,
        name: row.text("name")?,
        role: row.parsed("role", |s| s.parse::<Role>().ok())?,
        password_hash: row.text("password_hash")?,
        created_at: row.time("created_at")?,
        code_failures: count(row.int("code_failures")?),
        password_failures: count(row.int("password_failures")?),
        password_locked_until: row.opt_time("password_locked_until")?,
        code_locked_until: row.opt_time("code_locked_until")?,
        language: row.parsed("language", Language::from_code)?,
        disabled_at: row.opt_time("disabled_at")?,
    })
}

pub(crate) fn mail_from(row: &impl Columns) -> StoreResult<QueuedMail> {
    Ok(QueuedMail {
        id: row.uuid("id")?,
        account_id: row.opt_uuid("account_id")?.map(AccountId),
        to: row.text("recipient")?,
        to_name: row.text("recipient_name")?,
        language: row.parsed("language", Language::from_code)?,
        payload: row.text("payload")?,
        kind: row.text("kind")?,
        attempts: count(row.int("attempts")?),
        created_at: row.time("created_at")?,
        claim: row
            .opt_uuid("claimed_by")?
            .ok_or_else(|| StoreError::Corrupt("claimed mail without claim".into()))?,
    })
}

/// A factor's columns (of a table named `f`) under `f_` names, for a query that
/// joins an account's factors: one row per factor, one of NULLs for none.
pub(crate) const F_COLUMNS: &str = "f.id AS f_id, f.account_id AS f_account_id,
    f.kind AS f_kind, f.label AS f_label, f.secret_sealed AS f_secret_sealed,
    f.created_at AS f_created_at, f.confirmed_at AS f_confirmed_at,
    f.last_used_at AS f_last_used_at, f.last_step AS f_last_step";

/// The factors in rows with [`F_COLUMNS`], each once (a factor's rows come one
/// after the other when the query orders by factor).
pub(crate) fn factors_in<R: Columns>(rows: &[R]) -> StoreResult<Vec<Factor>> {
    let mut factors: Vec<Factor> = Vec::new();
    for row in rows {
        if let Some(id) = row.opt_uuid("f_id")? {
            if factors.last().is_none_or(|f| f.id.0 != id) {
                factors.push(factor_from(&Prefixed(row, "f_"))?);
            }
        }
    }
    Ok(factors)
}

pub(crate) fn factor_from(row: &impl Columns) -> StoreResult<Factor> {
    Ok(Factor {
        id: FactorId(row.uuid("id")?),
        account_id: AccountId(row.uuid("account_id")?),
        kind: row.parsed("kind", FactorKind::parse)?,
        label: row.text("label")?,
        secret_sealed: row.bytes("secret_sealed")?,
        created_at: row.time("created_at")?,
        confirmed_at: row.opt_time("confirmed_at")?,
        last_used_at: row.opt_time("last_used_at")?,
        last_step: row.opt_int("last_step")?,
    })
}

pub(crate) fn session_from(row: &impl Columns) -> StoreResult<Session> {
    Ok(Session {
        id_hash: TokenHash(row.text("id_hash")?),
        account_id: AccountId(row.uuid("account_id")?),
        stage: row.parsed("stage", SessionStage::parse)?,
        created_at: row.time("created_at")?,
        last_seen_at: row.time("last_seen_at")?,
        auth_time: row.time("auth_time")?,
        amr: row.text("amr")?,
        ip: row.opt_text("ip")?,
        user_agent: row.opt_text("user_agent")?,
        // Sessions from before sids: their hash stands in (it names no token).
        sid: match row.opt_text("sid")? {
            Some(s) => s,
            None => row.text("id_hash")?.chars().take(32).collect(),
        },
    })
}

pub(crate) fn audit_from(row: &impl Columns) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        at: row.time("at")?,
        event: row.text("event")?,
        account_id: row.opt_uuid("account_id")?.map(AccountId),
        email: row.opt_text("email")?,
        ip: row.opt_text("ip")?,
        user_agent: row.opt_text("user_agent")?,
        detail: row.opt_text("detail")?,
    })
}

pub(crate) fn session_code_from(row: &impl Columns) -> StoreResult<SessionCode> {
    Ok(SessionCode {
        session_hash: TokenHash(row.text("session_hash")?),
        purpose: row.parsed("purpose", CodePurpose::parse)?,
        account_id: AccountId(row.uuid("account_id")?),
        factor_id: row.opt_uuid("factor_id")?.map(FactorId),
        code_mac: row.text("code_mac")?,
        attempts: count(row.int("attempts")?),
        sends: count(row.int("sends")?),
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
    })
}

pub(crate) fn enrollment_link_from(row: &impl Columns) -> StoreResult<EnrollmentLink> {
    Ok(EnrollmentLink {
        token_hash: TokenHash(row.text("token_hash")?),
        account_id: AccountId(row.uuid("account_id")?),
        purpose: row.parsed("purpose", LinkPurpose::parse)?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
    })
}

/// `query` as a case-insensitive `LIKE` pattern for "contains", with `\` escaping
/// the wildcards a user might type.
pub(crate) fn contains_pattern(query: &str) -> String {
    let mut p = String::from("%");
    for c in query.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

pub(crate) fn device_from(row: &impl Columns) -> StoreResult<RememberedDevice> {
    Ok(RememberedDevice {
        id: row.uuid("id")?,
        token_hash: TokenHash(row.text("token_hash")?),
        account_id: AccountId(row.uuid("account_id")?),
        label: row.text("label")?,
        created_at: row.time("created_at")?,
        last_used_at: row.time("last_used_at")?,
        expires_at: row.time("expires_at")?,
    })
}

pub(crate) fn recovery_code_from(row: &impl Columns) -> StoreResult<StoredRecoveryCode> {
    Ok(StoredRecoveryCode {
        account_id: AccountId(row.uuid("account_id")?),
        code_mac: row.text("code_mac")?,
        created_at: row.time("created_at")?,
        used_at: row.opt_time("used_at")?,
    })
}

pub(crate) fn signing_key_from(row: &impl Columns) -> StoreResult<SigningKey> {
    Ok(SigningKey {
        kid: row.text("kid")?,
        alg: row.parsed("alg", SigningAlg::parse)?,
        private_sealed: row.bytes("private_sealed")?,
        public_jwk: row.parsed("public_jwk", |s| serde_json::from_str(s).ok())?,
        created_at: row.time("created_at")?,
        retired_at: row.opt_time("retired_at")?,
    })
}

/// How a client's redirect URIs are stored: a JSON array.
pub(crate) fn redirect_uris_json(uris: &[String]) -> String {
    serde_json::Value::from(uris.to_vec()).to_string()
}

pub(crate) fn client_from(row: &impl Columns) -> StoreResult<OidcClient> {
    let secret_hash = row.opt_text("secret_hash")?;
    let kind = row.text("client_type")?;
    if (kind == "public") != secret_hash.is_none() {
        return Err(StoreError::Corrupt(format!("client type {kind:?}")));
    }
    Ok(OidcClient {
        id: row.text("id")?,
        name: row.text("name")?,
        redirect_uris: row.parsed("redirect_uris", |s| serde_json::from_str(s).ok())?,
        secret_hash,
        created_at: Some(row.time("created_at")?),
        id_token_alg: row.parsed("id_token_alg", SigningAlg::parse)?,
        source: ClientSource::Database,
        options: row.parsed("options", |s| serde_json::from_str(s).ok())?,
    })
}

pub(crate) fn oidc_code_from(row: &impl Columns) -> StoreResult<StoredCode> {
    Ok(StoredCode {
        code_hash: TokenHash(row.text("code_hash")?),
        account_id: AccountId(row.uuid("account_id")?),
        grant: row.text("grant_json")?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
        sid: row.opt_text("sid")?,
        client_id: row.opt_text("client_id")?.unwrap_or_default(),
    })
}

pub(crate) fn oidc_token_from(row: &impl Columns) -> StoreResult<StoredToken> {
    Ok(StoredToken {
        token_hash: TokenHash(row.text("token_hash")?),
        account_id: row.opt_uuid("account_id")?.map(AccountId),
        client_id: row.opt_text("client_id")?.unwrap_or_default(),
        sid: row.opt_text("sid")?,
        kind: row.parsed("kind", TokenKind::parse)?,
        family: row.text("family")?,
        grant: row.text("grant_json")?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

pub(crate) fn logout_from(row: &impl Columns) -> StoreResult<QueuedLogout> {
    Ok(QueuedLogout {
        sid: row.text("sid")?,
        client_id: row.text("client_id")?,
        subject: row.text("subject")?,
        created_at: row.time("created_at")?,
        attempts: count(row.int("attempts")?),
        claim: row.opt_uuid("claimed_by")?.unwrap_or_default(),
    })
}

pub(crate) fn consent_from(row: &impl Columns) -> StoreResult<Consent> {
    Ok(Consent {
        client_id: row.text("client_id")?,
        scope: row.text("scope")?,
        granted_at: row.time("granted_at")?,
    })
}

/// A row read with every column name under a prefix (a joined table's aliases,
/// e.g. `f.id AS f_id`).
pub(crate) struct Prefixed<'a, R>(pub(crate) &'a R, pub(crate) &'static str);

impl<R: Columns> Prefixed<'_, R> {
    fn name(&self, name: &str) -> String {
        format!("{}{name}", self.1)
    }
}

impl<R: Columns> Columns for Prefixed<'_, R> {
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        self.0.opt_text(&self.name(name))
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.0.opt_int(&self.name(name))
    }
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
        self.0.bytes(&self.name(name))
    }
    fn opt_time(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.0.opt_time(&self.name(name))
    }
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<uuid::Uuid>> {
        self.0.opt_uuid(&self.name(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate() {
        assert_eq!(count(3), 3);
        assert_eq!(count(i64::MAX), u32::MAX);
        assert_eq!(count(-1), u32::MAX);
    }
}
