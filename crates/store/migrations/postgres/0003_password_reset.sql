-- Forgotten-password links. In step with migrations/sqlite/0003_password_reset.sql.
-- The database keeps only the SHA-256 of each token (hex); the token itself is in
-- the mail alone. A link is claimed once by setting `used_at` in one conditional
-- UPDATE; issuing a new link or changing the password sets `used_at` on the
-- account's other open links. Rows are kept (also used ones) for the per-account
-- rate limit on reset mails.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX password_resets_account ON password_resets(account_id, created_at);
