-- Codes and tokens of the code flow name their account in a column, so that a
-- password change or a support reset can end them in the same transaction (and
-- they go with the account). Rows from before are filled from their grant. In
-- step with migrations/sqlite/0011_oidc_grant_account.sql.
ALTER TABLE oidc_codes ADD COLUMN account_id UUID REFERENCES accounts(id) ON DELETE CASCADE;
ALTER TABLE oidc_tokens ADD COLUMN account_id UUID REFERENCES accounts(id) ON DELETE CASCADE;

-- (Read with a pattern rather than a cast to jsonb, which would stop the whole
-- migration at a single malformed row.)
UPDATE oidc_codes c SET account_id = a.id FROM accounts a
    WHERE a.id::text = substring(c.grant_json from '"account_id":"([0-9a-f-]{36})"');
UPDATE oidc_tokens t SET account_id = a.id FROM accounts a
    WHERE a.id::text = substring(t.grant_json from '"account_id":"([0-9a-f-]{36})"');
-- What names no existing account can never be used again.
DELETE FROM oidc_codes WHERE account_id IS NULL;
DELETE FROM oidc_tokens WHERE account_id IS NULL;

CREATE INDEX oidc_codes_account ON oidc_codes(account_id);
CREATE INDEX oidc_tokens_account ON oidc_tokens(account_id);
