//! The OpenID Connect code flow as the engine runs it: authorization requests kept
//! while the person signs in, codes, tokens, refresh rotation and replay detection.

use super::{SessionInfo, Tweestap};
use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;
use crate::oidc::acr::SignInProof;
use crate::oidc::authorize::AuthRequest;
use crate::oidc::flow::{
    s256, valid_verifier, CodeClaim, Grant, OidcError, StoredCode, StoredRequest, StoredToken,
    TokenKind,
};
use crate::oidc::{OidcClient, SigningAlg};
use crate::token::Token;
use chrono::Duration;
use serde_json::{json, Value};

/// How long a pending authorization request waits for the sign-in.
pub const REQUEST_LIFETIME: i64 = 15 * 60;
/// Authorization codes live 60 seconds.
pub const CODE_LIFETIME: i64 = 60;
/// Access tokens live 10 minutes.
pub const ACCESS_LIFETIME: i64 = 10 * 60;
/// ID tokens live 5 minutes.
pub const ID_TOKEN_LIFETIME: i64 = 5 * 60;
/// Refresh tokens live 30 days (each rotation starts again).
pub const REFRESH_LIFETIME: i64 = 30 * 24 * 3600;
/// A pushed authorization request waits 90 seconds for the browser (RFC 9126).
pub const PUSHED_LIFETIME: i64 = 90;

/// What the token endpoint answers.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
    /// None for a service (`client_credentials`).
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: String,
}

fn invalid_grant(why: &str) -> OidcError {
    OidcError::new("invalid_grant", why)
}

pub(super) fn parse_grant(json: &str) -> std::result::Result<Grant, OidcError> {
    serde_json::from_str(json).map_err(|e| {
        tracing::error!(error = %e, "a stored OIDC grant is unreadable");
        OidcError::new("server_error", "the server could not complete the request")
    })
}

/// What a token response belongs to and how its ID token is signed.
struct Issue<'a> {
    /// The code's hash, or the refresh token family it continues.
    family: &'a str,
    from_code: bool,
    /// The client's `id_token_signed_response_alg`.
    alg: SigningAlg,
}

impl Tweestap {
    /// Keeps a validated request while the person signs in; returns its id.
    pub async fn store_auth_request(&self, r: &AuthRequest) -> Result<Token> {
        self.keep_request(r, REQUEST_LIFETIME).await
    }

    /// A pushed authorization request (RFC 9126): kept briefly, used once.
    pub async fn push_auth_request(&self, r: &AuthRequest) -> Result<(Token, i64)> {
        let r = AuthRequest {
            pushed: true,
            ..r.clone()
        };
        Ok((
            self.keep_request(&r, PUSHED_LIFETIME).await?,
            PUSHED_LIFETIME,
        ))
    }

    async fn keep_request(&self, r: &AuthRequest, lifetime: i64) -> Result<Token> {
        let id = Token::generate();
        let now = self.clock.now();
        self.store
            .insert_oidc_request(&StoredRequest {
                id_hash: id.hash(),
                request: serde_json::to_string(r).unwrap_or_default(),
                created_at: now,
                expires_at: now + Duration::seconds(lifetime),
            })
            .await?;
        Ok(id)
    }

    /// A pending request, while it lasts (never a pushed one that was not used).
    pub async fn auth_request(&self, id: &str) -> Result<Option<AuthRequest>> {
        let Some(t) = Token::from_client(id) else {
            return Ok(None);
        };
        let json = self.store.oidc_request(&t.hash(), self.clock.now()).await?;
        Ok(json
            .and_then(|j| serde_json::from_str::<AuthRequest>(&j).ok())
            .filter(|r| !r.pushed))
    }

    /// Uses a pushed request of `client_id` once; `None` when unknown, used,
    /// expired, or pushed by another client (which leaves it for its own).
    pub async fn take_pushed_request(
        &self,
        id: &str,
        client_id: &str,
    ) -> Result<Option<AuthRequest>> {
        let Some(t) = Token::from_client(id) else {
            return Ok(None);
        };
        let peek = self.store.oidc_request(&t.hash(), self.clock.now()).await?;
        let mine = peek
            .and_then(|j| serde_json::from_str::<AuthRequest>(&j).ok())
            .is_some_and(|r| r.pushed && r.client_id == client_id);
        if !mine {
            return Ok(None);
        }
        let json = self
            .store
            .take_oidc_request(&t.hash(), self.clock.now())
            .await?;
        Ok(json
            .and_then(|j| serde_json::from_str::<AuthRequest>(&j).ok())
            .filter(|r| r.pushed)
            .map(|r| AuthRequest { pushed: false, ..r }))
    }

    /// Whether `info`'s person must first allow `client` what `r` asks.
    pub async fn needs_consent(
        &self,
        r: &AuthRequest,
        client: &OidcClient,
        info: &SessionInfo,
    ) -> Result<bool> {
        if !r.prompt.consent && !client.options.third_party {
            return Ok(false);
        }
        let given = self.store.oidc_consent(info.account.id, &client.id).await?;
        Ok(r.needs_consent(client, given.as_deref()))
    }

    /// Issues a code for the signed-in person; returns it (shown once).
    pub async fn issue_code(
        &self,
        r: &AuthRequest,
        info: &SessionInfo,
        ctx: &RequestContext,
    ) -> Result<Token> {
        let sid = info.session.sid.clone();
        let grant = Grant {
            client_id: r.client_id.clone(),
            account_id: info.account.id.0,
            redirect_uri: r.redirect_uri.clone(),
            scope: r.scope.clone(),
            nonce: r.nonce.clone(),
            code_challenge: r.code_challenge.clone(),
            auth_time: info.session.auth_time.timestamp(),
            amr: info.session.amr.clone(),
            sid: Some(sid.clone()),
        };
        let code = Token::generate();
        let now = self.clock.now();
        self.store
            .insert_oidc_code(&StoredCode {
                code_hash: code.hash(),
                account_id: info.account.id,
                grant: serde_json::to_string(&grant).unwrap_or_default(),
                created_at: now,
                expires_at: now + Duration::seconds(CODE_LIFETIME),
                used_at: None,
                sid: Some(sid.clone()),
                client_id: r.client_id.clone(),
            })
            .await?;
        // A portal that wants to hear when this sign-in ends.
        if let Some(c) = self.client(&r.client_id).await? {
            if c.options.backchannel_logout_uri.is_some() {
                self.store
                    .record_session_client(&sid, &c.id, info.account.id, now)
                    .await?;
            }
        }
        self.audit(
            AuditEvent::OidcCodeIssued,
            Some(&info.account),
            None,
            ctx,
            Some(format!("client {}", r.client_id)),
        )
        .await?;
        Ok(code)
    }

    /// Authenticates the client at the token endpoint: a confidential client by its
    /// secret, a public one by its id alone.
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
        ctx: &RequestContext,
    ) -> std::result::Result<OidcClient, OidcError> {
        let client = self.client(client_id).await?;
        let ok = match (&client, secret) {
            (Some(c), Some(s)) => c.verify_secret(s),
            (Some(c), None) => c.is_public(),
            (None, _) => false,
        };
        match client {
            Some(c) if ok => Ok(c),
            _ => {
                self.audit(
                    AuditEvent::OidcClientAuthFailed,
                    None,
                    None,
                    ctx,
                    Some(format!("client {client_id}")),
                )
                .await?;
                Err(OidcError::new(
                    "invalid_client",
                    "client authentication failed",
                ))
            }
        }
    }

    /// `grant_type=authorization_code`.
    pub async fn exchange_code(
        &self,
        issuer: &str,
        client: &OidcClient,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        ctx: &RequestContext,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let Some(code) = Token::from_client(code) else {
            return Err(invalid_grant("the code is not valid"));
        };
        let now = self.clock.now();
        let stored = match self
            .store
            .claim_oidc_code(&code.hash(), now)
            .await
            .map_err(crate::error::Error::from)?
        {
            CodeClaim::Unknown => return Err(invalid_grant("the code is not valid")),
            CodeClaim::Reused(c) => {
                // A replay: whatever the first use issued dies now (RFC 9700, 4.2.4).
                let revoked = self
                    .store
                    .revoke_oidc_family(&c.code_hash.0, now)
                    .await
                    .map_err(crate::error::Error::from)?;
                let grant = parse_grant(&c.grant)?;
                let account = self.account_of(grant.account_id).await?;
                self.audit(
                    AuditEvent::OidcCodeReused,
                    account.as_ref(),
                    None,
                    ctx,
                    Some(format!(
                        "client {}; {revoked} token(s) revoked",
                        grant.client_id
                    )),
                )
                .await?;
                return Err(invalid_grant("the code was already used"));
            }
            CodeClaim::Fresh(c) => c,
        };
        if stored.expires_at <= now {
            return Err(invalid_grant("the code has expired"));
        }
        let grant = parse_grant(&stored.grant)?;
        if grant.client_id != client.id {
            return Err(invalid_grant("the code was issued to another client"));
        }
        if redirect_uri != Some(grant.redirect_uri.as_str()) {
            return Err(invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&grant.code_challenge, verifier) {
            (Some(ch), Some(v)) if valid_verifier(v) && &s256(v) == ch => {}
            (Some(_), None) => {
                return Err(OidcError::new(
                    "invalid_request",
                    "code_verifier is missing: the authorization request had a code_challenge",
                ))
            }
            (Some(_), Some(_)) => return Err(invalid_grant("the code_verifier does not match")),
            (None, Some(_)) => {
                return Err(invalid_grant("no code_challenge was sent for this code"))
            }
            (None, None) => {}
        }
        let account = self
            .account_of(grant.account_id)
            .await?
            .filter(|a| a.disabled_at.is_none())
            .ok_or_else(|| invalid_grant("the account no longer exists"))?;
        let tokens = Issue {
            family: &stored.code_hash.0,
            from_code: true,
            alg: client.id_token_alg,
        };
        let issued = self
            .issue_tokens(issuer, &grant, &account, tokens, ctx)
            .await?;
        // A replay that came while these were being stored has revoked the family
        // before they were in it: revoke again now that they are.
        if self.store.oidc_code_replayed(&stored.code_hash).await? {
            self.store
                .revoke_oidc_family(&stored.code_hash.0, self.clock.now())
                .await?;
            return Err(invalid_grant("the code was already used"));
        }
        Ok(issued)
    }

    /// `grant_type=refresh_token`, with rotation: the presented token dies, a new one
    /// comes back; presenting a used one revokes its whole family.
    pub async fn refresh_tokens(
        &self,
        issuer: &str,
        client: &OidcClient,
        refresh_token: &str,
        ctx: &RequestContext,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let Some(token) = Token::from_client(refresh_token) else {
            return Err(invalid_grant("the refresh token is not valid"));
        };
        let now = self.clock.now();
        let stored = self
            .store
            .oidc_token(&token.hash())
            .await
            .map_err(crate::error::Error::from)?
            .filter(|t| t.kind == TokenKind::Refresh)
            .ok_or_else(|| invalid_grant("the refresh token is not valid"))?;
        let grant = parse_grant(&stored.grant)?;
        if grant.client_id != client.id {
            return Err(invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if stored.revoked_at.is_some() {
            return Err(invalid_grant("the refresh token was revoked"));
        }
        if stored.used_at.is_some()
            || !self
                .store
                .use_refresh_token(&stored.token_hash, now)
                .await
                .map_err(crate::error::Error::from)?
        {
            let revoked = self
                .store
                .revoke_oidc_family(&stored.family, now)
                .await
                .map_err(crate::error::Error::from)?;
            let account = self.account_of(grant.account_id).await?;
            self.audit(
                AuditEvent::OidcRefreshReused,
                account.as_ref(),
                None,
                ctx,
                Some(format!(
                    "client {}; {revoked} token(s) revoked",
                    grant.client_id
                )),
            )
            .await?;
            return Err(invalid_grant("the refresh token was already used"));
        }
        if stored.expires_at <= now {
            return Err(invalid_grant("the refresh token has expired"));
        }
        let account = self
            .account_of(grant.account_id)
            .await?
            .filter(|a| a.disabled_at.is_none())
            .ok_or_else(|| invalid_grant("the account no longer exists"))?;
        if let Some(sid) = &stored.sid {
            if !self.sid_is_live(sid).await? {
                return Err(invalid_grant("the session it came from has ended"));
            }
        }
        let tokens = Issue {
            family: &stored.family,
            from_code: false,
            alg: client.id_token_alg,
        };
        let issued = self
            .issue_tokens(issuer, &grant, &account, tokens, ctx)
            .await?;
        // A replay of the presented token that came while these were being stored
        // has revoked the family before they were in it: revoke again now that they
        // are (as for a code, in `exchange_code`).
        let replayed = self
            .store
            .oidc_token(&stored.token_hash)
            .await
            .map_err(crate::error::Error::from)?
            .is_none_or(|t| t.revoked_at.is_some());
        if replayed {
            self.store
                .revoke_oidc_family(&stored.family, self.clock.now())
                .await
                .map_err(crate::error::Error::from)?;
            return Err(invalid_grant("the refresh token was already used"));
        }
        Ok(issued)
    }

    pub(super) async fn account_of(&self, id: uuid::Uuid) -> Result<Option<Account>> {
        Ok(self.store.account_by_id(AccountId(id)).await?)
    }

    /// The ID token's claims for `grant`: who, how and when they signed in, and
    /// what the scopes release (`openid` alone: only `sub`).
    pub fn id_token_claims(
        &self,
        issuer: &str,
        grant: &Grant,
        account: &Account,
        with_nonce: bool,
    ) -> Value {
        let now = self.clock.now().timestamp();
        let proof = SignInProof::of(&grant.amr);
        let mut c = json!({
            "iss": issuer,
            "sub": account.id.0.to_string(),
            "aud": grant.client_id,
            "exp": now + ID_TOKEN_LIFETIME,
            "iat": now,
            "auth_time": grant.auth_time,
            "amr": proof.amr,
            "acr": proof.level.acr(),
        });
        if let Some(sid) = &grant.sid {
            c["sid"] = json!(sid);
        }
        if let (true, Some(n)) = (with_nonce, &grant.nonce) {
            c["nonce"] = json!(n);
        }
        scoped_claims(&mut c, grant, account);
        c
    }

    async fn issue_tokens(
        &self,
        issuer: &str,
        grant: &Grant,
        account: &Account,
        Issue {
            family,
            from_code,
            alg,
        }: Issue<'_>,
        ctx: &RequestContext,
    ) -> std::result::Result<TokenResponse, OidcError> {
        let now = self.clock.now();
        let grant_json = serde_json::to_string(grant).unwrap_or_default();
        // Access tokens end with the sign-in they came from (one refreshed after it
        // ended stands alone); an offline_access refresh token outlives it.
        let access_sid = match &grant.sid {
            Some(s) if from_code || self.sid_is_live(s).await? => Some(s.clone()),
            _ => None,
        };
        let refresh_sid = if grant.has_scope("offline_access") {
            None
        } else {
            grant.sid.clone()
        };
        let access = Token::generate();
        self.store
            .insert_oidc_token(&StoredToken {
                token_hash: access.hash(),
                account_id: Some(account.id),
                client_id: grant.client_id.clone(),
                sid: access_sid,
                kind: TokenKind::Access,
                family: family.to_owned(),
                grant: grant_json.clone(),
                created_at: now,
                expires_at: now + Duration::seconds(ACCESS_LIFETIME),
                used_at: None,
                revoked_at: None,
            })
            .await
            .map_err(crate::error::Error::from)?;
        let refresh = if grant.has_scope("offline_access") {
            let t = Token::generate();
            self.store
                .insert_oidc_token(&StoredToken {
                    token_hash: t.hash(),
                    account_id: Some(account.id),
                    client_id: grant.client_id.clone(),
                    sid: refresh_sid,
                    kind: TokenKind::Refresh,
                    family: family.to_owned(),
                    grant: grant_json,
                    created_at: now,
                    expires_at: now + Duration::seconds(REFRESH_LIFETIME),
                    used_at: None,
                    revoked_at: None,
                })
                .await
                .map_err(crate::error::Error::from)?;
            Some(t.as_str().to_owned())
        } else {
            None
        };
        // The nonce belongs in the ID token from the code (Core 3.1.3.6), not in a
        // refreshed one (Core 12.2: it SHOULD NOT be there).
        let claims = self.id_token_claims(issuer, grant, account, from_code);
        let id_token = self.sign_id_token(&claims, alg).await?;
        self.audit(
            AuditEvent::OidcTokensIssued,
            Some(account),
            None,
            ctx,
            Some(format!(
                "client {}; {}",
                grant.client_id,
                if from_code {
                    "authorization_code"
                } else {
                    "refresh_token"
                }
            )),
        )
        .await?;
        Ok(TokenResponse {
            access_token: access.as_str().to_owned(),
            expires_in: ACCESS_LIFETIME,
            id_token: Some(id_token),
            refresh_token: refresh,
            scope: grant.scope.clone(),
        })
    }

    /// Records an RP-initiated logout.
    pub async fn audit_oidc_logout(
        &self,
        account: Option<&Account>,
        client: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.audit(
            AuditEvent::OidcLogout,
            account,
            None,
            ctx,
            client.map(|c| format!("client {c}")),
        )
        .await
    }
}

/// The claims `grant`'s scopes release, added to `c` (ID token and userinfo alike).
pub(super) fn scoped_claims(c: &mut Value, grant: &Grant, account: &Account) {
    if grant.has_scope("email") {
        c["email"] = json!(account.email.as_str());
        c["email_verified"] = json!(true);
    }
    if grant.has_scope("profile") {
        c["name"] = json!(account.name);
    }
}
