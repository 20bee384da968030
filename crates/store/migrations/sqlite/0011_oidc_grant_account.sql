-- Codes and tokens of the code flow name their account in a column, so that a
-- password change or a support reset can end them in the same transaction (and
-- they go with the account). Rows from before are filled from their grant. In
-- step with migrations/postgres/0011_oidc_grant_account.sql.
ALTER TABLE oidc_codes ADD COLUMN account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE;
ALTER TABLE oidc_tokens ADD COLUMN account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE;

UPDATE oidc_codes SET account_id = json_extract(grant_json, '$.account_id')
    WHERE json_valid(grant_json)
      AND json_extract(grant_json, '$.account_id') IN (SELECT id FROM accounts);
UPDATE oidc_tokens SET account_id = json_extract(grant_json, '$.account_id')
    WHERE json_valid(grant_json)
      AND json_extract(grant_json, '$.account_id') IN (SELECT id FROM accounts);
-- What names no existing account can never be used again.
DELETE FROM oidc_codes WHERE account_id IS NULL;
DELETE FROM oidc_tokens WHERE account_id IS NULL;

CREATE INDEX oidc_codes_account ON oidc_codes(account_id);
CREATE INDEX oidc_tokens_account ON oidc_tokens(account_id);
