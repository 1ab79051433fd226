//! OpenID Connect relying party: discovery, authorization code flow with PKCE, state and
//! nonce, full ID token verification, access token verification, refresh, RP-initiated
//! logout, refresh token revocation. Nothing here is Okta-specific beyond configurable claim names.

mod config;
mod revoke;
pub use config::{OidcConfig, default_scopes};
pub use revoke::{PortalProviderMetadata, RevocationMetadata, RevokeOnEnd};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, LogoutRequest,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use url::Url;

use super::session::{AgentSession, PendingLogin, StoredTokens};
use super::tokens::{self, Expect, KeySet, TokenError};

/// Claims beyond the standard set (the groups claim lives here).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub claims: HashMap<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

type IdFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type ProviderTokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
type RpClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    ProviderTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
>;
type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Why a sign-in (or refresh) failed. The message is safe to show; it never contains tokens.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached or answered unexpectedly: {0}")]
    Provider(String),
    #[error("the identity provider refused the request: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    #[error("the ID token failed verification: {0}")]
    IdToken(String),
    #[error("the access token failed verification: {0}")]
    AccessToken(String),
}

struct Provider {
    metadata: PortalProviderMetadata,
    /// The JWKS and the advertised asymmetric algorithms, for access tokens (shared with the
    /// API's token verifier when it trusts the same issuer).
    keys: Arc<KeySet>,
    /// Asymmetric algorithms the provider advertises for ID tokens.
    algorithms: Vec<CoreJwsSigningAlgorithm>,
    fetched_at: Instant,
}

/// The relying party. One per process; discovery and JWKS are cached.
pub struct Oidc {
    http: reqwest::Client,
    config: OidcConfig,
    issuer: IssuerUrl,
    redirect_url: RedirectUrl,
    post_logout_url: PostLogoutRedirectUrl,
    provider: RwLock<Option<Arc<Provider>>>,
    discovery_lock: Mutex<()>,
}

/// What a successful sign-in yields.
pub struct SignedIn {
    pub agent: AgentSession,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Oidc {
    pub fn new(
        http: reqwest::Client,
        config: OidcConfig,
        public_base: &Url,
    ) -> anyhow::Result<Oidc> {
        let issuer = IssuerUrl::new(config.issuer.as_str().trim_end_matches('/').to_string())?;
        let redirect_url = RedirectUrl::new(public_base.join(&config.redirect_path)?.to_string())?;
        let post_logout_url =
            PostLogoutRedirectUrl::new(public_base.join(&config.post_logout_path)?.to_string())?;
        Ok(Oidc {
            http,
            config,
            issuer,
            redirect_url,
            post_logout_url,
            provider: RwLock::new(None),
            discovery_lock: Mutex::new(()),
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The provider's metadata, discovered once and refreshed after `discovery_ttl_seconds`.
    async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        let ttl = Duration::from_secs(self.config.discovery_ttl_seconds);
        if let Some(p) = self.provider.read().await.as_ref()
            && p.fetched_at.elapsed() < ttl
        {
            return Ok(p.clone());
        }
        self.rediscover(None).await
    }

    /// Fetches discovery and JWKS again, unless another task did so since `seen`.
    async fn rediscover(&self, seen: Option<Instant>) -> Result<Arc<Provider>, OidcError> {
        let _guard = self.discovery_lock.lock().await;
        if let Some(p) = self.provider.read().await.as_ref() {
            let fresh = match seen {
                Some(seen) => p.fetched_at > seen,
                None => {
                    p.fetched_at.elapsed() < Duration::from_secs(self.config.discovery_ttl_seconds)
                }
            };
            if fresh {
                return Ok(p.clone());
            }
        }
        let http = self.http_client();
        let metadata = PortalProviderMetadata::discover_async(self.issuer.clone(), &http)
            .await
            .map_err(|e| OidcError::Provider(format!("discovery failed: {}", error_chain(&e))))?;
        let jwks_value = serde_json::to_value(metadata.jwks())
            .map_err(|e| OidcError::Provider(format!("JWKS: {e}")))?;
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks_value)
            .map_err(|e| OidcError::Provider(format!("JWKS: {e}")))?;
        let algorithms: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|alg| is_asymmetric(alg))
            .cloned()
            .collect();
        if algorithms.is_empty() {
            return Err(OidcError::Provider(
                "the provider advertises no asymmetric ID token signing algorithm".into(),
            ));
        }
        let fetched_at = Instant::now();
        let keys = Arc::new(KeySet {
            jwks,
            algorithms: algorithms.iter().filter_map(to_jwt_alg).collect(),
            fetched_at,
        });
        let provider = Arc::new(Provider {
            metadata,
            keys,
            algorithms,
            fetched_at,
        });
        *self.provider.write().await = Some(provider.clone());
        tracing::info!(issuer = %self.issuer.as_str(), "OpenID Provider metadata and keys loaded");
        Ok(provider)
    }

    /// True once discovery has succeeded (tries it if needed).
    pub async fn ready(&self) -> bool {
        self.provider().await.is_ok()
    }

    fn client(&self, provider: &Provider) -> Result<RpClient, OidcError> {
        let token_url = provider
            .metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| OidcError::Provider("the provider has no token endpoint".into()))?;
        let auth_url: AuthUrl = provider.metadata.authorization_endpoint().clone();
        let token_url: TokenUrl = token_url;
        let mut client = Client::new(
            ClientId::new(self.config.client_id.clone()),
            self.issuer.clone(),
            provider.metadata.jwks().clone(),
        )
        .set_client_secret(ClientSecret::new(
            self.config.client_secret.expose_secret().to_string(),
        ))
        .set_auth_uri(auth_url)
        .set_token_uri(token_url)
        .set_redirect_uri(self.redirect_url.clone());
        let methods = provider.metadata.token_endpoint_auth_methods_supported();
        let basic_supported = methods.is_none_or(|m| {
            m.contains(&openidconnect::core::CoreClientAuthMethod::ClientSecretBasic)
        });
        if !basic_supported {
            client = client.set_auth_type(openidconnect::AuthType::RequestBody);
        }
        Ok(client)
    }

    /// Starts a sign-in: the URL to send the browser to and what the callback must check.
    pub async fn begin(&self, return_to: String) -> Result<(Url, PendingLogin), OidcError> {
        let provider = self.provider().await?;
        let client = self.client(&provider)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.config.scopes {
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok((
            url,
            PendingLogin {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                return_to,
                started_at: now(),
            },
        ))
    }

    /// Exchanges the code and verifies every token. `pending` was checked for `state`
    /// by the caller.
    pub async fn complete(
        &self,
        pending: &PendingLogin,
        code: String,
    ) -> Result<SignedIn, OidcError> {
        let provider = self.provider().await?;
        let client = self.client(&provider)?;
        let http = self.http_client();
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(token_error)?;
        let id_token = response
            .extra_fields()
            .id_token()
            .ok_or_else(|| OidcError::IdToken("the token response has no ID token".into()))?
            .clone();
        let nonce = Nonce::new(pending.nonce.clone());
        let (provider, id_claims) = self
            .verify_id_token(provider, &id_token, |n: Option<&Nonce>| match n {
                Some(n) if constant_time_eq(n.secret(), nonce.secret()) => Ok(()),
                Some(_) => Err("nonce does not match the one sent".to_string()),
                None => Err("nonce missing".to_string()),
            })
            .await?;
        let access_token = response.access_token().secret().clone();
        let access = self.verify_access_token(&provider, &access_token).await?;
        let refresh_token = response.refresh_token().map(|t| t.secret().clone());

        let groups = claim_strings(id_claims.get(&self.config.groups_claim))
            .or_else(|| claim_strings(access.get(&self.config.groups_claim)))
            .unwrap_or_default();
        let scopes = claim_strings(access.get(&self.config.scopes_claim)).unwrap_or_default();
        let sub = id_claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let login = id_claims
            .get("preferred_username")
            .or_else(|| id_claims.get("email"))
            .and_then(Value::as_str)
            .unwrap_or(&sub)
            .to_string();
        let name = id_claims
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&login)
            .to_string();
        let email = id_claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string);
        let access_expires_at = access
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| now() + 300);
        let auth_time = id_claims.get("auth_time").and_then(Value::as_i64);
        Ok(SignedIn {
            agent: AgentSession {
                sub,
                login,
                name,
                email,
                groups,
                scopes,
                tokens: StoredTokens {
                    access_token: SecretString::from(access_token),
                    refresh_token: refresh_token.map(SecretString::from),
                    id_token: SecretString::from(id_token.to_string()),
                },
                access_expires_at,
                signed_in_at: now(),
                auth_time,
            },
        })
    }

    /// Verifies an ID token (signature by `kid`, `alg` among those advertised, iss, aud,
    /// exp with leeway, nonce). On an unknown key, the JWKS is fetched again once.
    async fn verify_id_token<N>(
        &self,
        provider: Arc<Provider>,
        id_token: &IdToken,
        nonce: N,
    ) -> Result<(Arc<Provider>, HashMap<String, Value>), OidcError>
    where
        N: Fn(Option<&Nonce>) -> Result<(), String> + Clone,
    {
        let mut provider = provider;
        for attempt in 0..2 {
            let client = self.client(&provider)?;
            let leeway = chrono::Duration::seconds(self.config.leeway_seconds as i64);
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(provider.algorithms.clone())
                .set_time_fn(move || chrono::Utc::now() - leeway);
            match id_token.claims(&verifier, nonce.clone()) {
                Ok(claims) => {
                    let value = serde_json::to_value(claims)
                        .map_err(|e| OidcError::IdToken(e.to_string()))?;
                    let map = match value {
                        Value::Object(m) => m.into_iter().collect(),
                        _ => HashMap::new(),
                    };
                    return Ok((provider, map));
                }
                Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                    openidconnect::SignatureVerificationError::NoMatchingKey,
                )) if attempt == 0 => {
                    provider = self.rediscover(Some(provider.fetched_at)).await?;
                }
                Err(e) => return Err(OidcError::IdToken(e.to_string())),
            }
        }
        Err(OidcError::IdToken(
            "no key in the provider's JWKS matches the token".into(),
        ))
    }

    /// Verifies a JWT access token against the same JWKS with the shared verifier
    /// ([`super::tokens`]).
    async fn verify_access_token(
        &self,
        provider: &Arc<Provider>,
        token: &str,
    ) -> Result<HashMap<String, Value>, OidcError> {
        let expect = Expect {
            issuer: self.issuer.as_str().to_string(),
            audience: self.config.access_token_audience.clone(),
            leeway_seconds: self.config.leeway_seconds,
        };
        let refetch = |seen| self.refetch_keys(seen);
        tokens::verify(provider.keys.clone(), refetch, token, &expect)
            .await
            .map_err(|e| OidcError::AccessToken(e.to_string()))
    }

    /// The sign-in issuer's keys (discovered and cached), for other verifiers of its tokens.
    pub async fn keys(&self) -> Result<Arc<KeySet>, TokenError> {
        let provider = self.provider().await;
        provider
            .map(|p| p.keys.clone())
            .map_err(|e| TokenError::Keys(e.to_string()))
    }

    /// The keys again, unless they were fetched after `seen` (an unknown `kid`).
    pub async fn refetch_keys(&self, seen: Instant) -> Result<Arc<KeySet>, TokenError> {
        let provider = self.rediscover(Some(seen)).await;
        provider
            .map(|p| p.keys.clone())
            .map_err(|e| TokenError::Keys(e.to_string()))
    }

    /// Uses the refresh token. Returns the agent with new tokens, scopes and groups.
    pub async fn refresh(&self, agent: &AgentSession) -> Result<AgentSession, OidcError> {
        let refresh_token =
            agent
                .tokens
                .refresh_token
                .as_ref()
                .ok_or_else(|| OidcError::Refused {
                    error: "no_refresh_token".into(),
                    description: Some("the provider issued no refresh token".into()),
                })?;
        let provider = self.provider().await?;
        let client = self.client(&provider)?;
        let http = self.http_client();
        let token = RefreshToken::new(refresh_token.expose_secret().to_string());
        let response = client
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await
            .map_err(token_error)?;
        let access_token = response.access_token().secret().clone();
        let access = self.verify_access_token(&provider, &access_token).await?;
        let mut updated = agent.clone();
        if let Some(id_token) = response.extra_fields().id_token() {
            let expected_sub = agent.sub.clone();
            let (_, claims) = self
                .verify_id_token(provider.clone(), id_token, |_: Option<&Nonce>| Ok(()))
                .await?;
            if claims.get("sub").and_then(Value::as_str) != Some(expected_sub.as_str()) {
                return Err(OidcError::IdToken(
                    "refreshed ID token names another subject".into(),
                ));
            }
            if let Some(groups) = claim_strings(claims.get(&self.config.groups_claim)) {
                updated.groups = groups;
            }
            updated.tokens.id_token = SecretString::from(id_token.to_string());
        } else if let Some(groups) = claim_strings(access.get(&self.config.groups_claim)) {
            updated.groups = groups;
        }
        updated.scopes = claim_strings(access.get(&self.config.scopes_claim)).unwrap_or_default();
        updated.access_expires_at = access
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| now() + 300);
        updated.tokens.access_token = SecretString::from(access_token);
        if let Some(new_refresh) = response.refresh_token() {
            updated.tokens.refresh_token = Some(SecretString::from(new_refresh.secret().clone()));
        }
        Ok(updated)
    }

    /// Where to send the browser to end the provider session, if the provider supports it.
    pub async fn end_session_url(&self, id_token: &str) -> Option<Url> {
        let provider = self.provider().await.ok()?;
        let endpoint = provider
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let id_token: IdToken = id_token.parse().ok()?;
        Some(
            LogoutRequest::from(endpoint)
                .set_id_token_hint(&id_token)
                .set_post_logout_redirect_uri(self.post_logout_url.clone())
                .set_state(CsrfToken::new_random())
                .http_get_url(),
        )
    }

    /// The origin of the provider's endpoints, for the CSP `form-action` directive.
    pub fn issuer_origin(&self) -> String {
        self.issuer.url().origin().ascii_serialization()
    }

    fn http_client(
        &self,
    ) -> impl Fn(
        openidconnect::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>> + Send>,
    > + use<> {
        let http = self.http.clone();
        move |request: openidconnect::HttpRequest| {
            let http = http.clone();
            Box::pin(async move { execute(&http, request).await })
        }
    }
}

async fn execute(
    http: &reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let mut builder = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body);
    if parts.version != http::Version::default() {
        builder = builder.version(parts.version);
    }
    let response = builder.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    let mut out = http::Response::new(bytes.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

fn is_asymmetric(alg: &CoreJwsSigningAlgorithm) -> bool {
    to_jwt_alg(alg).is_some()
}

fn to_jwt_alg(alg: &CoreJwsSigningAlgorithm) -> Option<jsonwebtoken::Algorithm> {
    use CoreJwsSigningAlgorithm as C;
    use jsonwebtoken::Algorithm as J;
    Some(match alg {
        C::RsaSsaPkcs1V15Sha256 => J::RS256,
        C::RsaSsaPkcs1V15Sha384 => J::RS384,
        C::RsaSsaPkcs1V15Sha512 => J::RS512,
        C::RsaSsaPssSha256 => J::PS256,
        C::RsaSsaPssSha384 => J::PS384,
        C::RsaSsaPssSha512 => J::PS512,
        C::EcdsaP256Sha256 => J::ES256,
        C::EcdsaP384Sha384 => J::ES384,
        C::EdDsa => J::EdDSA,
        _ => return None,
    })
}

fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>,
) -> OidcError {
    match e {
        RequestTokenError::ServerResponse(r) => OidcError::Refused {
            error: r.error().as_ref().to_string(),
            description: r.error_description().cloned(),
        },
        other => OidcError::Provider(error_chain(&other)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A claim as a set of strings: a JSON array of strings or a space-separated string.
fn claim_strings(value: Option<&Value>) -> Option<BTreeSet<String>> {
    match value? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        _ => None,
    }
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_as_array_or_space_separated() {
        let a = json!(["b", "a"]);
        let s = json!("a b");
        let expected: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(claim_strings(Some(&a)), Some(expected.clone()));
        assert_eq!(claim_strings(Some(&s)), Some(expected));
        assert_eq!(claim_strings(Some(&json!(3))), None);
        assert_eq!(claim_strings(None), None);
    }

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        assert!(is_asymmetric(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
        ));
        assert!(!is_asymmetric(&CoreJwsSigningAlgorithm::HmacSha256));
        assert!(!is_asymmetric(&CoreJwsSigningAlgorithm::None));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
