//! How far the roll-out has come (per role, and day by day), the reminder mails to
//! those still without two-step verification before their role's deadline, and the
//! audit log's pages and retention.

use super::Tweestap;
use crate::account::{Account, Role};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::console::{due_stage, next_stage, RolloutCounts, RolloutDay};
use crate::error::Result;
use crate::mail::{new_mail_id, Notice};
use crate::store::{AuditFilter, SentReminder};
use chrono::{Duration, NaiveDate};

/// Days of history the dashboard's series shows.
pub const SERIES_DAYS: i64 = 180;
/// Accounts one reminder run looks at per role (a run every hour catches up).
const REMINDER_BATCH: u32 = 10_000;

/// One role's roll-out.
#[derive(Debug, Clone)]
pub struct RoleRollout {
    pub role: Role,
    pub counts: RolloutCounts,
    pub required_from: Option<NaiveDate>,
    /// Days until `required_from` (negative once passed).
    pub days_left: Option<i64>,
    /// The next reminder stage (days before the deadline) and its day.
    pub next_reminder: Option<(u32, NaiveDate)>,
}

#[derive(Debug, Clone)]
pub struct Rollout {
    pub roles: Vec<RoleRollout>,
    /// Oldest first: per day and role, the counts at the end of that day.
    pub series: Vec<RolloutDay>,
}

impl Tweestap {
    /// The dashboard: counts per role now, the deadlines, and the series (today's
    /// counts recorded first, so it always ends today).
    pub async fn rollout(&self) -> Result<Rollout> {
        let today = self.clock.now().date_naive();
        // Counted once: recorded as today's and shown.
        let counts = self.store.rollout_counts().await?;
        self.save_rollout_day(&counts).await?;
        let policy = self.policy();
        let roles = counts
            .into_iter()
            .map(|(role, counts)| {
                let required_from = policy.role(role).required_from;
                RoleRollout {
                    role,
                    counts,
                    required_from,
                    days_left: required_from.map(|d| (d - today).num_days()),
                    next_reminder: required_from
                        .and_then(|d| next_stage(&policy.reminder_days, d, today)),
                }
            })
            .collect();
        let series = self
            .store
            .rollout_days(today - Duration::days(SERIES_DAYS))
            .await?;
        Ok(Rollout { roles, series })
    }

    /// Records today's counts (the hourly task and the dashboard call it; the last
    /// call of a day stays).
    /// Per role, how many accounts (not disabled) have which second factors now.
    pub async fn two_factor_counts(&self) -> Result<Vec<(Role, RolloutCounts)>> {
        Ok(self.store.rollout_counts().await?)
    }

    pub async fn record_rollout_day(&self) -> Result<()> {
        let counts = self.store.rollout_counts().await?;
        self.save_rollout_day(&counts).await
    }

    async fn save_rollout_day(&self, counts: &[(Role, RolloutCounts)]) -> Result<()> {
        let day = self.clock.now().date_naive();
        for &(role, counts) in counts {
            self.store
                .save_rollout_day(&RolloutDay { day, role, counts })
                .await?;
        }
        Ok(())
    }

    /// Accounts of a role still without two-step verification, by address.
    pub async fn without_two_factor(&self, role: Role, limit: u32) -> Result<Vec<Account>> {
        Ok(self.store.without_two_factor(role, limit).await?)
    }

    /// Who the reminder due today would go to, per role: the stage and the accounts
    /// that have not had it yet are not told apart here (a claim decides at sending).
    pub fn due_reminder(&self, role: Role) -> Option<(NaiveDate, u32)> {
        let policy = self.policy();
        let deadline = policy.role(role).required_from?;
        let today = self.clock.now().date_naive();
        due_stage(&policy.reminder_days, deadline, today).map(|s| (deadline, s))
    }

    /// Sends the reminder stage due today to every account of a role with a
    /// deadline that has no second factor and has not had this stage: each stage at
    /// most once per account, whichever node runs it (the claim is a row). Returns
    /// what was sent.
    pub async fn send_reminders(&self) -> Result<Vec<SentReminder>> {
        let mut sent = Vec::new();
        let now = self.clock.now();
        let today = now.date_naive();
        for role in [Role::User, Role::Support, Role::Admin] {
            let Some((deadline, stage)) = self.due_reminder(role) else {
                continue;
            };
            for account in self.store.without_two_factor(role, REMINDER_BATCH).await? {
                if !self
                    .store
                    .claim_reminder(account.id, deadline, stage, now)
                    .await?
                {
                    continue;
                }
                let notice = Notice::TwoFactorReminder {
                    deadline: deadline.format("%Y-%m-%d").to_string(),
                    days_left: (deadline - today).num_days(),
                };
                let ctx = RequestContext::default();
                let queued = self
                    .queue_notice(&account, new_mail_id(), notice, account.language, &ctx)
                    .await;
                if let Err(e) = queued {
                    // Not queued: the stage is not spent; the next run tries again.
                    self.store
                        .release_reminder(account.id, deadline, stage)
                        .await?;
                    return Err(e);
                }
                let detail = Some(format!("deadline={deadline} stage={stage}"));
                self.audit(AuditEvent::ReminderSent, Some(&account), None, &ctx, detail)
                    .await?;
                sent.push(SentReminder {
                    account_id: account.id,
                    email: account.email.to_string(),
                    deadline,
                    stage,
                    sent_at: now,
                });
            }
        }
        Ok(sent)
    }

    pub async fn sent_reminders(&self, limit: u32) -> Result<Vec<SentReminder>> {
        Ok(self.store.sent_reminders(limit).await?)
    }

    /// One page of the audit log, newest first, each record with its id (the
    /// `before_id` of the next page).
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<(i64, AuditRecord)>> {
        Ok(self
            .store
            .audit_page(filter, limit.clamp(1, 100_000))
            .await?)
    }

    /// Removes audit records older than the retention (`[console]
    /// audit_retention_days`); how many. Nothing without a retention.
    pub async fn prune_audit(&self) -> Result<u64> {
        let Some(keep) = self.settings.console.audit_retention else {
            return Ok(0);
        };
        let removed = self.store.prune_audit(self.clock.now() - keep).await?;
        if removed > 0 {
            let detail = Some(format!("removed={removed} kept_days={}", keep.num_days()));
            self.audit(
                AuditEvent::AuditPruned,
                None,
                None,
                &RequestContext::default(),
                detail,
            )
            .await?;
        }
        Ok(removed)
    }
}
