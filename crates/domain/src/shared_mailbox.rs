//! Shared mailboxes such as info@ or secretariaat@: several people read them, so a
//! second factor on such an account ties it to one person's phone. Both manuals ask
//! organisations to turn them into personal accounts; tweestap recognises them by
//! the part before the `@`.

use crate::account::Email;

/// Generic local parts, Dutch and English, that usually name a shared mailbox.
pub const DEFAULT_SHARED_LOCAL_PARTS: &[&str] = &[
    "info",
    "admin",
    "administratie",
    "contact",
    "office",
    "kantoor",
    "secretariaat",
    "secretariat",
    "balie",
    "onthaal",
    "receptie",
    "reception",
    "support",
    "helpdesk",
    "noreply",
    "no-reply",
    "sales",
    "verkoop",
    "boekhouding",
    "accounting",
    "facturatie",
    "billing",
    "hr",
    "personeel",
    "team",
    "algemeen",
    "general",
    "mail",
    "post",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMailboxes {
    local_parts: Vec<String>,
}

impl Default for SharedMailboxes {
    fn default() -> Self {
        Self::new(DEFAULT_SHARED_LOCAL_PARTS.iter().copied())
    }
}

impl SharedMailboxes {
    pub fn new<S: AsRef<str>>(local_parts: impl IntoIterator<Item = S>) -> Self {
        let mut local_parts: Vec<String> = local_parts
            .into_iter()
            .map(|s| s.as_ref().trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        local_parts.sort();
        local_parts.dedup();
        Self { local_parts }
    }

    /// Whether the address looks like a shared mailbox. A `+tag` is ignored
    /// (`info+portaal@` is still `info@`).
    pub fn is_shared(&self, email: &Email) -> bool {
        let local = email.as_str().split('@').next().unwrap_or_default();
        let local = local.split('+').next().unwrap_or_default();
        self.local_parts.iter().any(|p| p == local)
    }

    pub fn local_parts(&self) -> &[String] {
        &self.local_parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Email {
        Email::parse(s).expect("valid")
    }

    #[test]
    fn recognises_generic_addresses_in_any_case_and_with_tags() {
        let s = SharedMailboxes::default();
        assert!(s.is_shared(&e("info@example.be")));
        assert!(s.is_shared(&e("Secretariaat@Example.nl")));
        assert!(s.is_shared(&e("info+portaal@example.be")));
        assert!(!s.is_shared(&e("an.peeters@example.be")));
        assert!(
            !s.is_shared(&e("information@example.be")),
            "whole local part only"
        );
        assert!(
            !s.is_shared(&e("an@info.example.be")),
            "the domain does not count"
        );
    }

    #[test]
    fn the_list_is_configurable() {
        let s = SharedMailboxes::new([" Kassa ", "", "kassa"]);
        assert_eq!(s.local_parts(), ["kassa"]);
        assert!(s.is_shared(&e("kassa@example.be")));
        assert!(!s.is_shared(&e("info@example.be")));
    }
}
