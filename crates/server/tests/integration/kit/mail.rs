//! The mail outbox (`<data_dir>/outbox/*.eml`, the default without `smtp_url`) and
//! what the tests look for in a mail.

use super::app::TestApp;
use super::eventually;
use std::path::{Path, PathBuf};

/// The `.eml` files of mails of `kind` (`email-code`, `enrollment-link`,
/// `two-factor-reset`…) in the outbox of `data_dir`, oldest first.
pub fn outbox_in(data_dir: &Path, kind: &str) -> Vec<PathBuf> {
    let marker = format!("-{kind}-");
    let mut v: Vec<PathBuf> = std::fs::read_dir(data_dir.join("outbox"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.extension().is_some_and(|e| e == "eml")
            && p.file_name()
                .is_some_and(|f| f.to_string_lossy().contains(&marker))
    });
    v.sort();
    v
}

/// [`outbox_in`] of a test app.
pub fn outbox(app: &TestApp, kind: &str) -> Vec<PathBuf> {
    outbox_in(app.dir.path(), kind)
}

/// How many mails of `kind` the outbox of `data_dir` holds now.
pub fn mails_in(data_dir: &Path, kind: &str) -> usize {
    outbox_in(data_dir, kind).len()
}

/// The text part of the `n`-th (1-based) mail of `kind` in the outbox of
/// `data_dir`, once it is there.
pub async fn nth_mail_in(data_dir: &Path, kind: &str, n: usize) -> String {
    let raw = nth_raw_mail_in(data_dir, kind, n).await;
    text_part(&mailparse::parse_mail(&raw).expect("RFC 5322"))
}

/// The whole `n`-th (1-based) mail of `kind` in the outbox of `data_dir`, once it
/// is there.
pub async fn nth_raw_mail_in(data_dir: &Path, kind: &str, n: usize) -> Vec<u8> {
    eventually(20, &format!("{n} {kind} mail(s)"), || async {
        outbox_in(data_dir, kind).len() >= n
    })
    .await;
    std::fs::read(&outbox_in(data_dir, kind)[n - 1]).expect("eml")
}

/// [`nth_mail_in`] of a test app.
pub async fn nth_mail(app: &TestApp, kind: &str, n: usize) -> String {
    nth_mail_in(app.dir.path(), kind, n).await
}

/// The plain-text alternative of a message.
pub fn text_part(m: &mailparse::ParsedMail<'_>) -> String {
    m.subparts
        .iter()
        .find(|p| p.ctype.mimetype == "text/plain")
        .expect("text part")
        .get_body()
        .expect("body")
}

/// The first 6-digit code in a mail: a word, or a line of its own (possibly
/// written as "123 456").
pub fn code_in(mail: &str) -> String {
    let six_digits = |w: &str| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit());
    mail.lines()
        .find_map(|l| {
            let compact = l.replace(' ', "");
            if six_digits(&compact) {
                return Some(compact);
            }
            l.split_whitespace()
                .find(|w| six_digits(w))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no code in the mail:\n{mail}"))
}

/// The `/enroll/<token>` path of the link in a mail.
pub fn enroll_path_in(mail: &str) -> String {
    let at = mail
        .find("/enroll/")
        .unwrap_or_else(|| panic!("no /enroll/ link in the mail:\n{mail}"));
    let token: String = mail[at + "/enroll/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "a 256-bit token: {token:?}");
    format!("/enroll/{token}")
}
