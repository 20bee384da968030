-- The set-up journeys. In step with migrations/postgres/0004_enrollment.sql.

-- The 6-digit code mailed by "secure your account now", one per half-finished
-- session (it dies with the session). Only an HMAC of the code under a server key
-- is kept: a plain hash of six digits would be reversed in a millisecond.
CREATE TABLE email_codes (
    session_hash TEXT PRIMARY KEY REFERENCES sessions(id_hash) ON DELETE CASCADE,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    code_mac     TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    sends        INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

-- Mailed links to a personal QR page (from My Profile, or after a support reset).
-- Only the SHA-256 of each token is kept; a link is used once, by one conditional
-- UPDATE of `used_at`; a newer link or a reset ends the account's open links.
CREATE TABLE enrollment_links (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('profile', 'support_reset')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX enrollment_links_account ON enrollment_links(account_id, created_at);
