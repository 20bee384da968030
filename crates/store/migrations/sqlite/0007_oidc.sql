-- OpenID Connect: ID token signing keys and registered clients. In step with
-- migrations/postgres/0007_oidc.sql.

-- Signing keys. The private key (PKCS#8) is sealed with the server's secret key,
-- the kid as associated data; the public half is the JWK the JWKS publishes.
-- A retired key stays published for [oidc] key_retention_hours, then is deleted.
CREATE TABLE oidc_signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    private_sealed BLOB NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    retired_at     TEXT
);
-- At most one active key per algorithm, decided by the database: nodes starting
-- at once cannot both add one.
CREATE UNIQUE INDEX oidc_signing_keys_one_active ON oidc_signing_keys(alg)
    WHERE retired_at IS NULL;

-- Clients added with `tweestap client add` (those of the configuration file are
-- not stored). Only the SHA-256 of a confidential client's secret is kept.
CREATE TABLE oidc_clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    -- A JSON array of strings, each matched exactly.
    redirect_uris TEXT NOT NULL,
    client_type   TEXT NOT NULL CHECK (client_type IN ('public', 'confidential')),
    secret_hash   TEXT,
    created_at    TEXT NOT NULL,
    CHECK ((client_type = 'public') = (secret_hash IS NULL))
);
