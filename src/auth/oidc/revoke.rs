//! Token revocation (RFC 7009) at the provider's `revocation_endpoint`: an ended portal
//! session leaves no refresh token that could still mint tokens.
//!
//! The request is sent directly: the oauth2 crate refuses a revocation endpoint that is not
//! https, and the local simulator is plain http on loopback.

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, LogoutProviderMetadata, ProviderMetadata, RevocationUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{Oidc, OidcError, error_chain};

/// Discovery fields beyond the standard set that revocation needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RevocationMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<RevocationUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_methods_supported: Option<Vec<CoreClientAuthMethod>>,
}

impl AdditionalProviderMetadata for RevocationMetadata {}

/// The provider's metadata: the standard fields, RP-initiated logout and revocation.
pub type PortalProviderMetadata = ProviderMetadata<
    LogoutProviderMetadata<RevocationMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    error_description: Option<String>,
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Oidc {
    /// Revokes a refresh token. The provider answers 200 also for a token it no longer knows,
    /// so an error means the revocation may not have happened.
    pub async fn revoke_refresh_token(&self, token: &SecretString) -> Result<(), OidcError> {
        let provider = self.provider().await?;
        let extra = &provider.metadata.additional_metadata().additional_metadata;
        let endpoint = extra.revocation_endpoint.clone().ok_or_else(|| {
            OidcError::Provider("the provider advertises no revocation endpoint".into())
        })?;
        let basic = extra
            .revocation_endpoint_auth_methods_supported
            .as_ref()
            .is_none_or(|m| m.contains(&CoreClientAuthMethod::ClientSecretBasic));
        let secret = self.config.client_secret.expose_secret();
        let mut form = vec![
            ("token", token.expose_secret()),
            ("token_type_hint", "refresh_token"),
        ];
        let mut request = self.http.post(endpoint.url().as_str());
        if basic {
            request = request.basic_auth(
                form_encode(&self.config.client_id),
                Some(form_encode(secret)),
            );
        } else {
            form.push(("client_id", self.config.client_id.as_str()));
            form.push(("client_secret", secret));
        }
        let response = request.form(&form).send().await.map_err(|e| {
            OidcError::Provider(format!("token revocation failed: {}", error_chain(&e)))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        match response.json::<ErrorBody>().await {
            Ok(body) => Err(OidcError::Refused {
                error: body.error,
                description: body.error_description,
            }),
            Err(_) => Err(OidcError::Provider(format!(
                "token revocation answered {status}"
            ))),
        }
    }
}

/// What the portal does when a session ends (sign-out, absolute lifetime, idle expiry swept,
/// a failed refresh): it revokes the agent's refresh token at the provider, so the token
/// cannot mint new ones afterwards.
pub struct RevokeOnEnd(pub std::sync::Arc<Oidc>);

#[async_trait::async_trait]
impl crate::session_store::SessionEnded for RevokeOnEnd {
    async fn ended(&self, data: &std::collections::HashMap<String, serde_json::Value>) -> bool {
        let Some(value) = data.get(crate::auth::session::AGENT_KEY) else {
            return true;
        };
        let Ok(agent) = serde_json::from_value::<crate::auth::session::AgentSession>(value.clone())
        else {
            return true;
        };
        let Some(refresh_token) = agent.tokens.refresh_token else {
            return true;
        };
        match self.0.revoke_refresh_token(&refresh_token).await {
            Ok(()) => {
                tracing::info!(sub = ?agent.sub, "refresh token revoked as the session ended");
                true
            }
            Err(e) => {
                tracing::warn!(sub = ?agent.sub, error = %e, "revoking the refresh token of an ended session failed");
                false
            }
        }
    }
}
