-- SMS codes and the record of sends. In step with migrations/postgres/0006_sms.sql.

-- The live SMS code of a half-finished sign-in or set-up (one per session; it dies
-- with the session or the factor). Only an HMAC of the code is kept.
CREATE TABLE sms_codes (
    session_hash TEXT PRIMARY KEY REFERENCES sessions(id_hash) ON DELETE CASCADE,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    factor_id    TEXT NOT NULL REFERENCES factors(id) ON DELETE CASCADE,
    code_mac     TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    sends        INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

-- Every SMS send (each may cost money): the pumping limits count these. The number
-- is kept only as an HMAC, the address as typed by the proxy or peer.
CREATE TABLE sms_sends (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    account_id  TEXT,
    number_mac  TEXT NOT NULL,
    ip          TEXT
);
CREATE INDEX sms_sends_at ON sms_sends(at);
