//! Importing an existing user base from a CSV file (see [`crate::account_import`]):
//! new addresses become accounts, known ones get the name, role and password hash
//! given, and a second run of the same file changes nothing. Hashes are copied as
//! they are, never computed, so 100,000 rows take seconds.

use super::{Actor, Tweestap};
use crate::account::{Account, AccountId, Email, Role};
use crate::account_import::{self, ImportRow, LineError};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::error::{Error, Result};
use crate::password::formats::{self, NO_PASSWORD};
use crate::store::NewAccount;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// How to run an import.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Report what would change; write nothing.
    pub dry_run: bool,
    /// Write nothing when any line has an error (the default); otherwise write the
    /// good lines and report the bad ones.
    pub all_or_nothing: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            all_or_nothing: true,
        }
    }
}

/// What an import did, or (in a dry run, or when all-or-nothing refused) would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Accounts created with `invite` set: each was sent an invitation.
    pub invited: usize,
    pub errors: Vec<LineError>,
    /// Whether anything was written (false for a dry run and a refused import).
    pub written: bool,
}

/// What one good row does.
enum Change {
    Create(NewAccount),
    Update { new: NewAccount, what: String },
    Unchanged,
}

impl Tweestap {
    /// Imports accounts from a CSV file (see [`crate::account_import`] for its
    /// columns). Admins and the command line only. All-or-nothing unless
    /// `options.all_or_nothing` is off; rows with `invite` set that create an account
    /// get an invitation (links start at `base_url`).
    pub async fn import_accounts(
        &self,
        actor: Actor<'_>,
        file: &[u8],
        options: ImportOptions,
        base_url: &str,
        ctx: &RequestContext,
    ) -> Result<ImportReport> {
        if let Actor::Staff(a) = actor {
            if a.role != Role::Admin {
                let detail = Some(format!("account import; role={}", a.role));
                self.audit(AuditEvent::AdminRefused, Some(a), None, ctx, detail)
                    .await?;
                return Err(Error::Forbidden);
            }
        }
        let parsed = account_import::parse(file);
        let emails: Vec<Email> = parsed.rows.iter().map(|r| r.email.clone()).collect();
        let existing: HashMap<Email, Account> = self
            .store
            .accounts_by_emails(&emails)
            .await?
            .into_iter()
            .map(|a| (a.email.clone(), a))
            .collect();
        let now = self.clock.now();
        let mut report = ImportReport {
            errors: parsed.errors,
            ..ImportReport::default()
        };
        let mut writes = Vec::new();
        let mut audit = Vec::new();
        let mut to_invite = Vec::new();
        for row in &parsed.rows {
            match change(row, existing.get(&row.email), now) {
                Change::Create(new) => {
                    report.created += 1;
                    if row.invite {
                        to_invite.push(new.email.clone());
                    }
                    let detail = format!("import line {}; role={}", row.line, new.role);
                    audit.push(record(AuditEvent::AccountCreated, &new, now, ctx, detail));
                    writes.push(new);
                }
                Change::Update { new, what } => {
                    report.updated += 1;
                    let detail = format!("import line {}; {what}", row.line);
                    audit.push(record(AuditEvent::AccountUpdated, &new, now, ctx, detail));
                    writes.push(new);
                }
                Change::Unchanged => report.unchanged += 1,
            }
        }
        report.invited = to_invite.len();
        if options.dry_run || (options.all_or_nothing && !report.errors.is_empty()) {
            return Ok(report);
        }
        let (by, by_id, by_email) = match actor {
            Actor::Staff(a) => (a.email.to_string(), Some(a.id), Some(a.email.to_string())),
            Actor::Console => ("cli".to_owned(), None, None),
        };
        audit.push(AuditRecord {
            at: now,
            event: AuditEvent::AccountsImported.as_str().to_owned(),
            account_id: by_id,
            email: by_email,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            detail: Some(format!(
                "by={by} created={} updated={} unchanged={} invited={} errors={}",
                report.created,
                report.updated,
                report.unchanged,
                report.invited,
                report.errors.len()
            )),
        });
        self.store.import_accounts(&writes, &audit).await?;
        report.written = true;
        if !to_invite.is_empty() {
            report.invited = 0;
            for account in self.store.accounts_by_emails(&to_invite).await? {
                // The accounts are in; a failed mail must not hide that from the report.
                match self.invite_account(&account, base_url, ctx).await {
                    Ok(()) => report.invited += 1,
                    Err(e) => {
                        tracing::warn!(email = %account.email, error = %e, "invitation failed")
                    }
                }
            }
        }
        Ok(report)
    }
}

/// What `row` changes of the account with its address, if there is one.
fn change(row: &ImportRow, existing: Option<&Account>, now: DateTime<Utc>) -> Change {
    let Some(a) = existing else {
        return Change::Create(NewAccount {
            id: AccountId::random(),
            email: row.email.clone(),
            name: row.name.clone().unwrap_or_default(),
            role: row.role.unwrap_or(Role::User),
            password_hash: row
                .password_hash
                .clone()
                .unwrap_or_else(|| NO_PASSWORD.to_owned()),
            created_at: now,
        });
    };
    let mut what = Vec::new();
    let name = match &row.name {
        Some(n) if *n != a.name => {
            what.push(format!("name {:?} -> {n:?}", a.name));
            n.clone()
        }
        _ => a.name.clone(),
    };
    let role = match row.role {
        Some(r) if r != a.role => {
            what.push(format!("role {} -> {r}", a.role));
            r
        }
        _ => a.role,
    };
    let password_hash = match &row.password_hash {
        Some(h) if *h != a.password_hash => {
            let format = |h: &str| formats::recognise(h).map_or("none", |f| f.as_str());
            what.push(format!(
                "password_hash {} -> {}",
                format(&a.password_hash),
                format(h)
            ));
            h.clone()
        }
        _ => a.password_hash.clone(),
    };
    if what.is_empty() {
        return Change::Unchanged;
    }
    Change::Update {
        new: NewAccount {
            id: a.id,
            email: a.email.clone(),
            name,
            role,
            password_hash,
            created_at: a.created_at,
        },
        what: what.join("; "),
    }
}

fn record(
    event: AuditEvent,
    a: &NewAccount,
    at: DateTime<Utc>,
    ctx: &RequestContext,
    detail: String,
) -> AuditRecord {
    AuditRecord {
        at,
        event: event.as_str().to_owned(),
        account_id: Some(a.id),
        email: Some(a.email.to_string()),
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
        detail: Some(detail),
    }
}
