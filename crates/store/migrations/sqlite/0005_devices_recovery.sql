-- Remembered devices and recovery codes. In step with migrations/postgres/0005_devices_recovery.sql.

-- "Remember this device for 7 days": the browser holds a random token in a cookie;
-- only its SHA-256 is kept, bound to one account.
CREATE TABLE remembered_devices (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    label        TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX remembered_devices_account ON remembered_devices(account_id);

-- Single-use recovery codes: only an HMAC of each under a server key.
CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    code_mac   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    used_at    TEXT,
    PRIMARY KEY (account_id, code_mac)
);
