//! Runs the local Snowflake SQL API stand-in that the tests use, to try the Snowflake commands
//! without an account:
//!
//! ```text
//! cargo run -p clyra-warehouse --example snowflake_standin -- DIR [HISTORY_LAG_SECS]
//! ```
//!
//! Writes a fresh RSA key to `DIR/rsa_key.p8` (mode 0600), registers its public key for account
//! `XY12345`, user `CI_BOT`, accepts the OAuth token in `DIR/oauth_token.txt`, prints the base
//! URL, and serves until killed. Statements it runs show in its QUERY_HISTORY after
//! HISTORY_LAG_SECS (default 0). It is a stand-in built from the documentation, not Snowflake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/snowflake.rs"]
mod standin;

use std::io::Write as _;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(
        args.next()
            .expect("usage: snowflake_standin DIR [HISTORY_LAG_SECS]"),
    );
    let lag: i64 = args
        .next()
        .map_or(0, |s| s.parse().expect("HISTORY_LAG_SECS is a number"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = standin::TestKey::generate();
    let key_path = key.write_private(&dir, "rsa_key.p8");
    let token = "standin-oauth-token";
    let token_path = dir.join("oauth_token.txt");
    std::fs::write(&token_path, token).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&token_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut config = standin::Config::new(&key);
    config.oauth_token = Some(token.to_string());
    config.history_lag_s = lag;
    let server = standin::StandIn::start(config);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server.url).unwrap();
    writeln!(out, "key {} ({})", key_path.display(), key.fingerprint()).unwrap();
    writeln!(out, "oauth token file {}", token_path.display()).unwrap();
    out.flush().unwrap();
    drop(out);
    server.wait();
}
