-- Throttles kept apart from the account (issue 18, finding 2): the password step
-- per account and client address, per address over every account, per remembered
-- browser and per session, and the recovery codes of an account. In step with
-- migrations/postgres/0016_password_throttle.sql.
--
-- `key` names what is counted (`password:account:<id>:<address>`,
-- `password:address:<address>`, `password:backstop:<id>`, `code:recovery:<id>`,
-- ...). `failures` counts the attempts taken (before their answer is known) since
-- `since`; while `locked_until` lies ahead none is taken. A row goes with its
-- account, and when idle for 30 days with the housekeeping.
CREATE TABLE throttles (
    key          TEXT PRIMARY KEY,
    account_id   TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL,
    since        TEXT NOT NULL,
    last_at      TEXT NOT NULL,
    locked_until TEXT
);
CREATE INDEX throttles_account ON throttles(account_id);
CREATE INDEX throttles_last_at ON throttles(last_at);

-- The account's own password counter and lock (one throttle for everyone, which
-- let strangers lock people out) are no longer used: the account's backstop
-- against many addresses is a throttle here too. What they held is cleared.
UPDATE accounts SET password_failures = 0, password_locked_until = NULL;
