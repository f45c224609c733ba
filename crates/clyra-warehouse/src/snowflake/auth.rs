//! Credentials for the SQL API: key-pair JWTs and OAuth access tokens.
//!
//! A key-pair JWT (header `X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT`) is signed with
//! RS256 (RSASSA-PKCS1-v1_5, SHA-256) by the user's RSA key, whose public half was registered with
//! `ALTER USER ... SET RSA_PUBLIC_KEY = '...'`. Its claims, as Snowflake documents them:
//!
//! - `iss`: `ACCOUNT.USER.SHA256:<fingerprint>`, the fingerprint being the standard base64 of the
//!   SHA-256 of the public key's DER SubjectPublicKeyInfo (what `DESC USER` shows as
//!   `RSA_PUBLIC_KEY_FP`);
//! - `sub`: `ACCOUNT.USER`;
//! - `iat` and `exp`: issue and expiry time in seconds, at most one hour apart.
//!
//! `ACCOUNT` is the account identifier in upper case; an account locator loses its region and
//! cloud suffix (`xy12345.us-east-2.aws` → `XY12345`), a `.global` identifier everything from
//! its first hyphen. `USER` is the login name in upper case.
//!
//! The private key is read from an unencrypted PKCS#8 PEM file (`openssl pkcs8 -topk8 -nocrypt`)
//! that only its owner can read; it is never logged, printed or put in an error, and its text is
//! zeroized after parsing.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::SnowflakeError;

/// The longest JWT lifetime Snowflake accepts.
pub const MAX_JWT_LIFETIME: Duration = Duration::from_secs(3600);

/// The lifetime Clyra gives its JWTs: a minute under the maximum, for clock skew.
pub const DEFAULT_JWT_LIFETIME: Duration = Duration::from_secs(3540);

/// The smallest RSA key accepted, in bits (Snowflake requires at least 2048).
pub const MIN_RSA_BITS: usize = 2048;

/// The account identifier as it goes into JWT claims: upper case, without the region and cloud
/// of an account locator.
pub fn jwt_account(account: &str) -> Result<String, SnowflakeError> {
    let invalid = |message: &str| SnowflakeError::Invalid {
        what: "Snowflake account",
        value: account.to_string(),
        message: message.to_string(),
    };
    let a = account.trim();
    let a = a
        .strip_prefix("https://")
        .unwrap_or(a)
        .trim_end_matches('/');
    let a = a.strip_suffix(".snowflakecomputing.com").unwrap_or(a);
    let lower = a.to_ascii_lowercase();
    let cut = if lower.contains(".global") {
        a.split('-').next()
    } else {
        a.split('.').next()
    };
    let out = cut.unwrap_or("").to_ascii_uppercase();
    if out.is_empty() {
        return Err(invalid("it is empty"));
    }
    if !out
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        return Err(invalid(
            "an account identifier has letters, digits, `_` and `-` only (e.g. `myorg-myaccount` or `xy12345.us-east-2.aws`)",
        ));
    }
    Ok(out)
}

/// The login name as it goes into JWT claims: upper case.
pub fn jwt_user(user: &str) -> Result<String, SnowflakeError> {
    let u = user.trim();
    if u.is_empty() || u.chars().any(char::is_control) {
        return Err(SnowflakeError::Invalid {
            what: "Snowflake user",
            value: user.to_string(),
            message: "it is empty or contains control characters".to_string(),
        });
    }
    Ok(u.to_uppercase())
}

/// `SHA256:<standard base64 of SHA-256(SPKI DER)>`, the public key fingerprint Snowflake shows in
/// `RSA_PUBLIC_KEY_FP` and expects in the JWT's `iss`.
pub fn public_key_fingerprint(spki_der: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki_der))
    )
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A user's RSA key and the claims its JWTs carry.
pub struct KeyPair {
    account: String,
    user: String,
    key: rsa::pkcs1v15::SigningKey<Sha256>,
    fingerprint: String,
    lifetime: Duration,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("account", &self.account)
            .field("user", &self.user)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// From the text of an unencrypted PKCS#8 PEM RSA private key. `source` names the key in
    /// errors (a path, say).
    pub fn from_pkcs8_pem(
        account: &str,
        user: &str,
        pem: &str,
        source: &Path,
    ) -> Result<KeyPair, SnowflakeError> {
        let bad = |message: String| SnowflakeError::Key {
            path: source.to_path_buf(),
            message,
        };
        if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(bad("the key is encrypted; Clyra reads unencrypted PKCS#8 keys readable only by their owner (`openssl pkcs8 -in KEY -out KEY.clear.p8` then `chmod 600 KEY.clear.p8`)".into()));
        }
        if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            return Err(bad("the key is PKCS#1 (`BEGIN RSA PRIVATE KEY`); convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`".into()));
        }
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| {
            bad(format!(
                "not an unencrypted PKCS#8 PEM RSA private key (`BEGIN PRIVATE KEY`): {e}"
            ))
        })?;
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(bad(format!(
                "the RSA key has {bits} bits; Snowflake requires at least {MIN_RSA_BITS}"
            )));
        }
        let spki = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| bad(format!("cannot encode its public key: {e}")))?;
        Ok(KeyPair {
            account: jwt_account(account)?,
            user: jwt_user(user)?,
            fingerprint: public_key_fingerprint(spki.as_bytes()),
            key: rsa::pkcs1v15::SigningKey::new(key),
            lifetime: DEFAULT_JWT_LIFETIME,
        })
    }

    /// From a PKCS#8 PEM file that only its owner can read (on Unix, mode `0600` or stricter).
    pub fn from_file(account: &str, user: &str, path: &Path) -> Result<KeyPair, SnowflakeError> {
        let text =
            clyra_evidence::keys::read_private_key_text(path).map_err(|e| SnowflakeError::Key {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        KeyPair::from_pkcs8_pem(account, user, &text, path)
    }

    /// Sets how long each JWT is valid (at most one hour).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Result<KeyPair, SnowflakeError> {
        if lifetime.is_zero() || lifetime > MAX_JWT_LIFETIME {
            return Err(SnowflakeError::Invalid {
                what: "JWT lifetime",
                value: format!("{} s", lifetime.as_secs()),
                message: "Snowflake accepts key-pair JWTs valid for at most 3600 s".into(),
            });
        }
        self.lifetime = lifetime;
        Ok(self)
    }

    /// The JWT lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The account as it appears in the claims.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The user as it appears in the claims.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `SHA256:...`: compare it with `RSA_PUBLIC_KEY_FP` in `DESC USER`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The `iss` claim.
    pub fn issuer(&self) -> String {
        format!("{}.{}.{}", self.account, self.user, self.fingerprint)
    }

    /// The `sub` claim.
    pub fn subject(&self) -> String {
        format!("{}.{}", self.account, self.user)
    }

    /// A JWT issued at `iat` (seconds since the epoch), valid for [`KeyPair::lifetime`].
    pub fn token_at(&self, iat: i64) -> Zeroizing<String> {
        let header = br#"{"alg":"RS256","typ":"JWT"}"#;
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(3540);
        let claims = serde_json::json!({
            "iss": self.issuer(),
            "sub": self.subject(),
            "iat": iat,
            "exp": iat.saturating_add(lifetime),
        });
        let mut token = Zeroizing::new(format!(
            "{}.{}",
            b64url(header),
            b64url(claims.to_string().as_bytes())
        ));
        let sig = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&b64url(&sig.to_bytes()));
        token
    }
}

/// An OAuth access token. Shown nowhere.
pub struct OAuthToken(Zeroizing<String>);

impl std::fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthToken(<redacted>)")
    }
}

impl OAuthToken {
    /// A token given as text (surrounding whitespace removed).
    pub fn new(token: &str) -> Result<OAuthToken, SnowflakeError> {
        let t = token.trim();
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(SnowflakeError::Invalid {
                what: "OAuth token",
                value: "<redacted>".into(),
                message: "it is empty or contains spaces or non-ASCII characters".into(),
            });
        }
        Ok(OAuthToken(Zeroizing::new(t.to_string())))
    }

    /// Reads a token file that only its owner can read.
    pub fn from_file(path: &Path) -> Result<OAuthToken, SnowflakeError> {
        let bad = |message: String| SnowflakeError::TokenFile {
            path: path.to_path_buf(),
            message,
        };
        let text =
            clyra_evidence::keys::read_private_key_text(path).map_err(|e| bad(e.to_string()))?;
        OAuthToken::new(&text).map_err(|e| bad(e.to_string()))
    }
}

/// How a client proves who it is.
#[derive(Debug)]
pub enum Credentials {
    /// Key-pair authentication: a fresh JWT per connection, renewed before it expires.
    KeyPair(Box<KeyPair>),
    /// An OAuth access token, sent as is.
    OAuth(OAuthToken),
}

impl Credentials {
    /// The value of `X-Snowflake-Authorization-Token-Type`.
    pub fn token_type(&self) -> &'static str {
        match self {
            Credentials::KeyPair(_) => "KEYPAIR_JWT",
            Credentials::OAuth(_) => "OAUTH",
        }
    }

    /// The bearer token to send now (`now`: seconds since the epoch).
    pub fn bearer(&self, now: i64) -> Zeroizing<String> {
        match self {
            Credentials::KeyPair(k) => k.token_at(now),
            Credentials::OAuth(t) => t.0.clone(),
        }
    }

    /// How long a bearer token may be reused; `None`: for ever.
    pub fn token_lifetime(&self) -> Option<Duration> {
        match self {
            Credentials::KeyPair(k) => Some(k.lifetime()),
            Credentials::OAuth(_) => None,
        }
    }

    /// What to check when Snowflake refuses these credentials.
    pub fn hint(&self) -> String {
        match self {
            Credentials::KeyPair(k) => format!(
                "Check that user {} of account {} has the public key with fingerprint {} \
                 (`DESC USER {}` shows RSA_PUBLIC_KEY_FP; register it with `ALTER USER {} SET \
                 RSA_PUBLIC_KEY = '...'`), that --account and --user name them, and that this \
                 machine's clock is correct (the JWT is valid for {} s from now)",
                k.user,
                k.account,
                k.fingerprint,
                k.user,
                k.user,
                k.lifetime.as_secs()
            ),
            Credentials::OAuth(_) => "Check that the OAuth access token has not expired, that it \
                was issued for this account, and that its role may use the SQL API"
                .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn accounts_are_normalized_as_documented() {
        for (given, want) in [
            ("xy12345", "XY12345"),
            ("xy12345.us-east-2.aws", "XY12345"),
            ("myorg-myaccount", "MYORG-MYACCOUNT"),
            (
                "https://myorg-myaccount.snowflakecomputing.com/",
                "MYORG-MYACCOUNT",
            ),
            ("xy12345-abcdefg.global", "XY12345"),
            ("my_org-acct_1", "MY_ORG-ACCT_1"),
        ] {
            assert_eq!(jwt_account(given).unwrap(), want, "{given}");
        }
        for bad in ["", ".aws", "a b", "x/y", "acme;drop"] {
            assert!(jwt_account(bad).is_err(), "{bad}");
        }
        assert_eq!(jwt_user(" ci_bot ").unwrap(), "CI_BOT");
        assert!(jwt_user("").is_err());
    }

    #[test]
    fn oauth_tokens_are_never_shown() {
        let t = OAuthToken::new("  ver:1-hint:abc  ").unwrap();
        assert!(!format!("{t:?}").contains("abc"));
        assert_eq!(Credentials::OAuth(t).bearer(0).as_str(), "ver:1-hint:abc");
        let e = OAuthToken::new("secret with space")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
