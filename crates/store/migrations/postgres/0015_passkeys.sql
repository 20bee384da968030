-- Passkeys (WebAuthn). A passkey is a factor (kind 'passkey') whose sealed secret is
-- its credential as webauthn-rs keeps it (public key, signature counter, backup
-- flags); its credential id (base64url) is kept beside it in the clear, unique, so a
-- browser's answer finds its key, also in a sign-in without a password. In step with
-- migrations/sqlite/0015_passkeys.sql.
ALTER TABLE factors ADD COLUMN credential_id TEXT;
CREATE UNIQUE INDEX factors_credential ON factors(credential_id);

-- A ceremony waiting for the browser's answer, keyed by a hash of its challenge and
-- taken (deleted) when the answer is checked, so an answer counts once. One made
-- for a half-finished sign-in dies with it; one for a sign-in without a password
-- has no session and expires after a few minutes.
CREATE TABLE passkey_ceremonies (
    challenge_hash TEXT PRIMARY KEY,
    session_hash   TEXT REFERENCES sessions(id_hash) ON DELETE CASCADE,
    state          TEXT NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies(expires_at);
CREATE INDEX passkey_ceremonies_session ON passkey_ceremonies(session_hash);
