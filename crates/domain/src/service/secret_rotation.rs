//! Sealing every secret at rest again under the key that seals now: the work of
//! `tweestap keys rotate-secret`, once the new key is in the keyring.
//!
//! Rows are read page by page in the order of their ids and written back in
//! batches, one transaction each, and only where a row still holds what was read.
//! Every row is at all times sealed under the old key or the new one, both of which
//! open while the rotation runs; so a crash leaves every secret readable, and
//! running it again skips what is done. A pass that re-seals nothing proves the
//! end: also the rows that a server sealed under the old key meanwhile are done.

use super::Tweestap;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::mail::{reseal_link, Notice};
use crate::secret_box::{key_id_of, SecretBox};
use crate::store::{Resealed, SealedAt, SealedKind, SealedValue};

/// How many passes may still find values under another key before the rotation
/// gives up: something keeps sealing under the old key.
const MAX_PASSES: u32 = 5;

/// How a rotation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResealOptions {
    /// Rows per batch (and per transaction).
    pub batch_size: u32,
    /// A pause after each batch, to spare a busy database.
    pub pause: std::time::Duration,
    /// Stops after this many batches were written, as a crash would (for tests).
    pub stop_after_batches: Option<u32>,
}

impl Default for ResealOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            pause: std::time::Duration::ZERO,
            stop_after_batches: None,
        }
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Values sealed again under the sealing key.
    pub resealed: u64,
    /// Batches written (transactions).
    pub batches: u32,
    /// Sealed values the last pass looked at, per kind.
    pub checked: Vec<(SealedKind, u64)>,
    /// Every value is sealed under the sealing key (false: stopped early).
    pub finished: bool,
}

impl Tweestap {
    /// The secret box: what seals and opens secrets at rest (shared with the mail
    /// delivery, and reloaded when a rotation starts).
    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// Seals every secret at rest again under the sealing key (see the module).
    pub async fn reseal_secrets(&self, options: ResealOptions) -> Result<ResealReport> {
        let mut report = ResealReport::default();
        for _ in 0..MAX_PASSES {
            let before = report.resealed;
            report.checked.clear();
            for kind in SealedKind::ALL {
                let checked = self.reseal_kind(kind, options, &mut report).await?;
                report.checked.push((kind, checked));
                if stopped(options, &report) {
                    return Ok(report);
                }
            }
            if report.resealed == before {
                report.finished = true;
                let key = self.secrets.sealing_key();
                let detail = format!(
                    "by the command line; {} secrets sealed again under at-rest key {key}",
                    report.resealed
                );
                let ctx = RequestContext::default();
                self.audit(AuditEvent::SecretsResealed, None, None, &ctx, Some(detail))
                    .await?;
                return Ok(report);
            }
        }
        Err(Error::Internal(format!(
            "after {MAX_PASSES} passes secrets still appear under another at-rest key than {}: a node seals with the old key (does every node have the new key file?)",
            self.secrets.sealing_key()
        )))
    }

    /// One pass over one kind; how many values it looked at.
    async fn reseal_kind(
        &self,
        kind: SealedKind,
        options: ResealOptions,
        report: &mut ResealReport,
    ) -> Result<u64> {
        let mut after: Option<SealedAt> = None;
        let mut checked = 0;
        loop {
            let page = self
                .store
                .sealed_values(kind, after.as_ref(), options.batch_size.max(1))
                .await?;
            let Some(last) = page.last() else {
                return Ok(checked);
            };
            after = Some(last.at.clone());
            checked += page.len() as u64;
            let batch = page
                .iter()
                .map(|v| self.resealed(v).map_err(|e| cannot_reseal(v, e)))
                .filter_map(Result::transpose)
                .collect::<Result<Vec<_>>>()?;
            if batch.is_empty() {
                continue;
            }
            report.resealed += self.store.replace_sealed(&batch).await?;
            report.batches += 1;
            if stopped(options, report) {
                return Ok(checked);
            }
            if !options.pause.is_zero() {
                tokio::time::sleep(options.pause).await;
            }
        }
    }

    /// `v` sealed again under the sealing key; `None` when it is already.
    fn resealed(&self, v: &SealedValue) -> Result<Option<Resealed>> {
        let new = match &v.at {
            SealedAt::Factor(id) => self.secrets.reseal(&v.value, id.0.as_bytes())?,
            SealedAt::SigningKey(kid) => self.secrets.reseal(&v.value, kid.as_bytes())?,
            SealedAt::Mail(id) => {
                let json = std::str::from_utf8(&v.value)
                    .map_err(|e| Error::Internal(format!("mail {id}: {e}")))?;
                // A kind of mail this version does not know carries nothing sealed
                // that it could know of.
                let Ok(mut notice) = Notice::from_json(json) else {
                    return Ok(None);
                };
                let Some(sealed) = notice.sealed_mut() else {
                    return Ok(None);
                };
                let Some(new) = reseal_link(&self.secrets, *id, sealed)? else {
                    return Ok(None);
                };
                *sealed = new;
                Some(notice.to_json().into_bytes())
            }
        };
        Ok(new.map(|new| Resealed {
            at: v.at.clone(),
            old: v.value.clone(),
            new,
        }))
    }

    /// Which at-rest key each sealed value names, with how many (`None`: a value
    /// from before values named their key): to check a rotation.
    pub async fn sealed_key_census(&self) -> Result<Vec<(Option<String>, u64)>> {
        let mut counts: std::collections::BTreeMap<Option<String>, u64> = Default::default();
        for kind in SealedKind::ALL {
            let mut after: Option<SealedAt> = None;
            loop {
                let page = self.store.sealed_values(kind, after.as_ref(), 500).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.at.clone());
                for v in &page {
                    if let Some(key) = sealed_in(kind, &v.value) {
                        *counts.entry(key).or_default() += 1;
                    }
                }
            }
        }
        Ok(counts.into_iter().collect())
    }
}

/// The key a stored value names: `Some(None)` for a value without one, `None`
/// for mail that carries nothing sealed.
fn sealed_in(kind: SealedKind, value: &[u8]) -> Option<Option<String>> {
    let id = match kind {
        SealedKind::FactorSecret | SealedKind::SigningKey => key_id_of(value),
        SealedKind::MailPayload => {
            let notice = Notice::from_json(std::str::from_utf8(value).ok()?).ok()?;
            let raw = crate::mail::sealed_bytes(notice.sealed()?)?;
            key_id_of(&raw)
        }
    };
    Some(id.map(|k| k.to_string()))
}

/// Which row could not be sealed again, and why: the rotation stops there, the
/// old key still held.
fn cannot_reseal(v: &SealedValue, e: Error) -> Error {
    let row = match &v.at {
        SealedAt::Factor(id) => format!("factor {id}"),
        SealedAt::SigningKey(kid) => format!("signing key {kid}"),
        SealedAt::Mail(id) => format!("queued mail {id}"),
    };
    Error::Internal(format!("{row} cannot be sealed again: {e}"))
}

fn stopped(options: ResealOptions, report: &ResealReport) -> bool {
    options
        .stop_after_batches
        .is_some_and(|n| report.batches >= n)
}
