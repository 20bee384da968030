-- The hourly cap on mailed codes counts an account's recent mail of one kind; this
-- keeps that count from reading the whole queue (sent mail stays 30 days). In step
-- with migrations/sqlite/0012_mail_queue_by_account.sql.
CREATE INDEX mail_queue_account ON mail_queue(account_id, kind, created_at);
