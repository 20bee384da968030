-- Remembered devices and recovery codes. In step with migrations/sqlite/0005_devices_recovery.sql.

-- "Remember this device for 7 days": the browser holds a random token in a cookie;
-- only its SHA-256 is kept, bound to one account.
CREATE TABLE remembered_devices (
    id           UUID PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    account_id   UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    label        TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX remembered_devices_account ON remembered_devices(account_id);

-- Single-use recovery codes: only an HMAC of each under a server key.
CREATE TABLE recovery_codes (
    account_id UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    code_mac   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (account_id, code_mac)
);
