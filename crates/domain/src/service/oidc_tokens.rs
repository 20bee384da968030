//! What portals and services do with tokens once they hold them: userinfo,
//! introspection (RFC 7662), revocation (RFC 7009), and the `client_credentials`
//! grant of services.
//!
//! A token counts only while everything it stands on holds: not revoked or
//! expired, its client still registered, its person still there and enabled, and,
//! unless it outlives sessions (`offline_access`, services), the browser sign-in it
//! came from still on. All of it is read from the database on every use, so every
//! node answers the same at once.

use super::oidc_flow::{scoped_claims, TokenResponse, ACCESS_LIFETIME};
use super::Tweestap;
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;
use crate::oidc::flow::{Grant, OidcError, ServiceGrant, StoredToken, TokenKind};
use crate::oidc::OidcClient;
use crate::token::Token;
use chrono::Duration;
use serde_json::{json, Value};

/// A token that counts, and what it stands for.
pub struct LiveToken {
    pub stored: StoredToken,
    pub holder: Holder,
}

/// Whom a live token speaks for.
pub enum Holder {
    Person {
        grant: Box<Grant>,
        account: Box<Account>,
    },
    Service(ServiceGrant),
}

impl Tweestap {
    /// The token `raw` if it counts now (see the module's rules).
    pub async fn live_token(&self, raw: &str) -> Result<Option<LiveToken>> {
        let Some(t) = Token::from_client(raw) else {
            return Ok(None);
        };
        let now = self.clock.now();
        // Token, client, sid and account in one query: this runs on every use.
        let policy = &self.settings.sessions;
        let Some(facts) = self
            .store
            .oidc_token_facts(&t.hash(), now - policy.idle, now - policy.absolute)
            .await?
        else {
            return Ok(None);
        };
        let stored = facts.token;
        if stored.revoked_at.is_some()
            || stored.expires_at <= now
            || (stored.kind == TokenKind::Refresh && stored.used_at.is_some())
        {
            return Ok(None);
        }
        // A removed client's tokens stop at once.
        let configured = self
            .settings
            .oidc
            .clients
            .iter()
            .any(|c| c.id == stored.client_id);
        if !configured && !facts.client_stored {
            return Ok(None);
        }
        if stored.sid.is_some() && !facts.sid_live {
            return Ok(None);
        }
        let holder = if let Ok(grant) = serde_json::from_str::<Grant>(&stored.grant) {
            // The joined account is the grant's (the column is written from it);
            // should they ever differ, the grant's is read.
            let account = match facts.account {
                Some(a) if a.id.0 == grant.account_id => Some(a),
                _ => self.account_of(grant.account_id).await?,
            };
            let Some(account) = account.filter(|a| a.disabled_at.is_none()) else {
                return Ok(None);
            };
            Holder::Person {
                grant: Box::new(grant),
                account: Box::new(account),
            }
        } else if let Ok(g) = serde_json::from_str::<ServiceGrant>(&stored.grant) {
            Holder::Service(g)
        } else {
            tracing::error!("a stored OIDC grant is unreadable");
            return Ok(None);
        };
        Ok(Some(LiveToken { stored, holder }))
    }

    /// The userinfo of a live access token of a person, by its scopes.
    pub async fn userinfo(&self, access_token: &str) -> Result<Option<Value>> {
        let Some(live) = self.live_token(access_token).await? else {
            return Ok(None);
        };
        if live.stored.kind != TokenKind::Access {
            return Ok(None);
        }
        let Holder::Person { grant, account } = live.holder else {
            return Ok(None);
        };
        let mut v = json!({ "sub": account.id.0.to_string() });
        scoped_claims(&mut v, &grant, &account);
        Ok(Some(v))
    }

    /// RFC 7662: what `token` is, for a confidential client. Anything that does not
    /// count is `{"active": false}` and nothing more.
    pub async fn introspect(
        &self,
        issuer: &str,
        client: &OidcClient,
        token: &str,
    ) -> std::result::Result<Value, OidcError> {
        if client.is_public() {
            return Err(OidcError::new(
                "invalid_client",
                "introspection is for confidential clients",
            ));
        }
        let Some(live) = self.live_token(token).await? else {
            return Ok(json!({ "active": false }));
        };
        // A portal learns about its own tokens; a service (an API that receives
        // tokens) about any. Others' tokens are no business of a portal's.
        if live.stored.client_id != client.id && !client.options.service {
            return Ok(json!({ "active": false }));
        }
        let s = &live.stored;
        let mut v = json!({
            "active": true,
            "client_id": s.client_id,
            "token_type": match s.kind {
                TokenKind::Access => "Bearer",
                TokenKind::Refresh => "refresh_token",
            },
            "exp": s.expires_at.timestamp(),
            "iat": s.created_at.timestamp(),
            "iss": issuer,
        });
        match &live.holder {
            Holder::Person { grant, account } => {
                v["scope"] = json!(grant.scope);
                v["sub"] = json!(account.id.0.to_string());
                v["aud"] = json!(grant.client_id);
                if grant.has_scope("email") {
                    v["username"] = json!(account.email.as_str());
                }
                if let Some(sid) = &grant.sid {
                    v["sid"] = json!(sid);
                }
            }
            Holder::Service(g) => {
                v["scope"] = json!(g.scope);
                v["aud"] = json!(g.audience);
            }
        }
        // A read, asked on every API call a resource server gets: traced, not
        // written to the audit log (revocation and the tokens' issue are).
        tracing::debug!(by = %client.id, issued_to = %s.client_id, "token introspected");

        Ok(v)
    }

    /// RFC 7009: `client` gives up `token`. A refresh token takes its family (every
    /// access token issued with it) along. Unknown tokens are fine (2.2); another
    /// client's are refused.
    pub async fn revoke_token(
        &self,
        client: &OidcClient,
        token: &str,
        ctx: &RequestContext,
    ) -> std::result::Result<(), OidcError> {
        let Some(t) = Token::from_client(token) else {
            return Ok(());
        };
        let Some(stored) = self.store.oidc_token(&t.hash()).await? else {
            return Ok(());
        };
        if stored.client_id != client.id {
            return Err(OidcError::new(
                "unauthorized_client",
                "the token was issued to another client",
            ));
        }
        let now = self.clock.now();
        let revoked = match stored.kind {
            TokenKind::Refresh => self.store.revoke_oidc_family(&stored.family, now).await?,
            TokenKind::Access => u64::from(
                self.store
                    .revoke_oidc_token(&stored.token_hash, now)
                    .await?,
            ),
        };
        let account = match stored.account_id {
            Some(id) => self.store.account_by_id(id).await?,
            None => None,
        };
        self.audit(
            AuditEvent::OidcTokenRevoked,
            account.as_ref(),
            None,
            ctx,
            Some(format!(
                "client {}; {} token; {revoked} revoked",
                client.id,
                stored.kind.as_str()
            )),
        )
        .await?;
        Ok(())
    }

    /// `grant_type=client_credentials`: a service's access token, with the scopes
    /// it asks of those registered (all of them when it asks none).
    pub async fn service_token(
        &self,
        client: &OidcClient,
        scope: Option<&str>,
        ctx: &RequestContext,
    ) -> std::result::Result<TokenResponse, OidcError> {
        if !client.options.service {
            return Err(OidcError::new(
                "unauthorized_client",
                "client_credentials is for clients registered as services",
            ));
        }
        let registered = &client.options.scopes;
        let scopes: Vec<String> = match scope {
            None => registered.clone(),
            Some(s) => {
                let mut out: Vec<String> = Vec::new();
                for x in s.split(' ').filter(|x| !x.is_empty()) {
                    if !registered.iter().any(|r| r == x) {
                        return Err(OidcError::new(
                            "invalid_scope",
                            format!("the scope {x:?} is not registered for this client"),
                        ));
                    }
                    if !out.iter().any(|o| o == x) {
                        out.push(x.to_owned());
                    }
                }
                out
            }
        };
        let grant = ServiceGrant {
            client_id: client.id.clone(),
            scope: scopes.join(" "),
            audience: client.service_audience(),
            service: true,
        };
        let access = Token::generate();
        let now = self.clock.now();
        self.store
            .insert_oidc_token(&StoredToken {
                token_hash: access.hash(),
                account_id: None,
                client_id: client.id.clone(),
                sid: None,
                kind: TokenKind::Access,
                // Its own family: nothing else is issued with it.
                family: access.hash().0,
                grant: serde_json::to_string(&grant).unwrap_or_default(),
                created_at: now,
                expires_at: now + Duration::seconds(ACCESS_LIFETIME),
                used_at: None,
                revoked_at: None,
            })
            .await?;
        self.audit(
            AuditEvent::OidcTokensIssued,
            None,
            None,
            ctx,
            Some(format!("client {}; client_credentials", client.id)),
        )
        .await?;
        Ok(TokenResponse {
            access_token: access.as_str().to_owned(),
            expires_in: ACCESS_LIFETIME,
            id_token: None,
            refresh_token: None,
            scope: grant.scope,
        })
    }
}
