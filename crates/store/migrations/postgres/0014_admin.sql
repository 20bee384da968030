-- The roll-out console: step-up for administrators, the policy edited in the
-- console, reminder mails claimed once per stage, a daily count of the roll-out,
-- invitations, and the indexes the console's lists page through.
-- In step with migrations/sqlite/0014_admin.sql.

-- When this session last proved a second factor after its sign-in (a step-up).
ALTER TABLE sessions ADD COLUMN code_at TIMESTAMPTZ;

-- The last full sign-in, for the console's list of accounts.
ALTER TABLE accounts ADD COLUMN last_sign_in_at TIMESTAMPTZ;

-- Settings edited in the console (the policy), one JSON document per key, so every
-- node reads the same; the configuration file gives the first values.
CREATE TABLE console_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Reminder mails before a role's deadline: the primary key is the claim, so a
-- stage goes to an account once, whichever node runs first.
CREATE TABLE reminders_sent (
    account_id UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    deadline   TEXT NOT NULL,
    stage      BIGINT NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, deadline, stage)
);
CREATE INDEX reminders_sent_at ON reminders_sent(sent_at);

-- How far the roll-out had come at the end of each day, per role.
CREATE TABLE rollout_days (
    day       TEXT NOT NULL,
    role      TEXT NOT NULL,
    without   BIGINT NOT NULL,
    app_only  BIGINT NOT NULL,
    sms_only  BIGINT NOT NULL,
    app_sms   BIGINT NOT NULL,
    PRIMARY KEY (day, role)
);

-- An invitation is a password link that lives longer: same table, its purpose.
ALTER TABLE password_resets ADD COLUMN purpose TEXT NOT NULL DEFAULT 'reset';

-- The console filters the audit log by account, event and address, newest first.
CREATE INDEX audit_account ON audit_log(account_id, id);
CREATE INDEX audit_event ON audit_log(event, id);
-- The console lists accounts by address in byte order (COLLATE "C", the same order
-- as SQLite's BINARY): these let a page read the first rows in that order instead
-- of sorting every account.
CREATE INDEX accounts_email_bytes ON accounts (email COLLATE "C");
CREATE INDEX accounts_role ON accounts (role, email COLLATE "C");
