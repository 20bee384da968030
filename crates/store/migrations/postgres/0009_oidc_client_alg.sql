-- The algorithm a client wants its ID tokens signed with (OpenID Connect Dynamic
-- Client Registration's id_token_signed_response_alg). In step with
-- migrations/sqlite/0009_oidc_client_alg.sql.
ALTER TABLE oidc_clients
    ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256'
    CHECK (id_token_alg IN ('RS256', 'ES256'));
