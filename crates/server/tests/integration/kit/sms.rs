//! The SMS outbox (`<data_dir>/sms-outbox/<stamp>-<id>.txt`, the default gateway).

use super::eventually;
use std::path::{Path, PathBuf};

/// The SMS in the outbox of `data_dir`, oldest first; not the temporary
/// `.<name>.tmp` of a file being written.
pub fn sms_files_in(data_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data_dir.join("sms-outbox"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.extension().is_some_and(|e| e == "txt")
            && p.file_name()
                .is_some_and(|f| !f.to_string_lossy().starts_with('.'))
    });
    v.sort();
    v
}

/// The `n`-th (1-based) SMS in the outbox of `data_dir`, once it is there: its
/// headers (`To:`, `Id:`, `Date:`), a blank line, the text.
pub async fn nth_sms_in(data_dir: &Path, n: usize) -> String {
    eventually(20, &format!("{n} SMS in the sms-outbox"), || async {
        sms_files_in(data_dir).len() >= n
    })
    .await;
    std::fs::read_to_string(&sms_files_in(data_dir)[n - 1]).expect("an SMS file")
}

/// The code in an outbox SMS: the first word of the text after the headers.
pub fn sms_code_in(file: &str) -> String {
    let (headers, text) = file
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("headers, a blank line, the text:\n{file}"));
    assert!(
        headers.contains("\nId: ") && headers.contains("\nDate: "),
        "{file}"
    );
    let code = text.split_whitespace().next().unwrap_or_default();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "a 6-digit code first:\n{file}"
    );
    code.to_owned()
}
