//! TLS with libpq's `sslmode` semantics against the real local server, which runs with
//! `ssl = on` and the Debian snakeoil certificate (self-signed, CN and SAN `localhost`). Whether a
//! session is encrypted is asked of the server (`pg_stat_ssl`), not taken from the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use clyra_warehouse::doctor::{self, Options, Status};
use clyra_warehouse::pg;

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The local server as `key=value` pairs (host, port, user, dbname of the test URL).
fn pairs() -> String {
    let c = pg::config(&support::pg_url()).unwrap();
    let host = match c.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        other => panic!("the TLS tests need a TCP test server, not {other:?}"),
    };
    format!(
        "host={host} port={} user={} dbname={}",
        c.get_ports().first().copied().unwrap_or(5432),
        c.get_user().unwrap_or("postgres"),
        c.get_dbname().unwrap_or("postgres"),
    )
}

/// Connects through `pg::connect` (the path every warehouse connection takes) and asks the
/// server whether this session is encrypted.
fn ssl_of(dsn: &str) -> Result<bool, String> {
    let mut c = pg::connect(dsn).map_err(|e| e.to_string())?;
    let row = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

fn server_has_ssl() {
    let on: String = support::client().query_one("SHOW ssl", &[]).unwrap().get(0);
    assert_eq!(
        on, "on",
        "these tests need the local server with ssl = on (scripts/services.sh)"
    );
    assert!(
        std::path::Path::new(SNAKEOIL).exists(),
        "{SNAKEOIL} is missing (package ssl-cert)"
    );
}

#[test]
fn default_prefer_and_require_encrypt_disable_does_not() {
    server_has_ssl();
    let url = support::pg_url();
    let kv = pairs();
    assert!(ssl_of(&url).unwrap(), "the default (prefer) encrypts");
    assert!(ssl_of(&format!("{kv} sslmode=prefer")).unwrap());
    assert!(ssl_of(&format!("{kv} sslmode=allow")).unwrap());
    assert!(!ssl_of(&format!("{kv} sslmode=disable")).unwrap());
    let sep = if url.contains('?') { '&' } else { '?' };
    assert!(!ssl_of(&format!("{url}{sep}sslmode=disable")).unwrap());
    assert!(ssl_of(&format!("{url}{sep}sslmode=require")).unwrap());
}

#[test]
fn verify_ca_checks_the_chain_but_not_the_name() {
    server_has_ssl();
    let kv = pairs();
    // 127.0.0.1 is not the certificate's name; verify-ca does not care.
    assert!(ssl_of(&format!("{kv} sslmode=verify-ca sslrootcert={SNAKEOIL}")).unwrap());
    // require with a root certificate behaves like verify-ca (libpq).
    assert!(ssl_of(&format!("{kv} sslmode=require sslrootcert={SNAKEOIL}")).unwrap());
    // Without sslrootcert the Mozilla roots are used, and they do not sign the snakeoil cert.
    let e = ssl_of(&format!("{kv} sslmode=verify-ca")).unwrap_err();
    assert!(e.to_lowercase().contains("unknownissuer"), "{e}");
    // And require with a root certificate that does not sign the server's fails too.
    let other = tempfile::NamedTempFile::new().unwrap();
    let ca = webpki_root_pem();
    std::fs::write(other.path(), ca).unwrap();
    let e = ssl_of(&format!(
        "{kv} sslmode=require sslrootcert={}",
        other.path().display()
    ))
    .unwrap_err();
    assert!(e.to_lowercase().contains("unknownissuer"), "{e}");
}

/// Some CA certificate that did not sign the snakeoil one: the first PEM in the system bundle.
fn webpki_root_pem() -> String {
    let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
        .expect("/etc/ssl/certs/ca-certificates.crt (package ca-certificates)");
    let end = "-----END CERTIFICATE-----";
    let cut = bundle.find(end).expect("a PEM certificate in the bundle") + end.len();
    format!("{}\n", &bundle[..cut])
}

#[test]
fn verify_full_checks_the_host_name() {
    server_has_ssl();
    let kv = pairs();
    let e = ssl_of(&format!("{kv} sslmode=verify-full sslrootcert={SNAKEOIL}")).unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");
    assert!(e.contains("127.0.0.1"), "{e}");
    // The certificate's name with the address to dial: the name is checked, no DNS needed.
    let named = kv.replacen("host=127.0.0.1", "host=localhost hostaddr=127.0.0.1", 1);
    assert_ne!(named, kv, "the test server is expected at host=127.0.0.1");
    assert!(ssl_of(&format!(
        "{named} sslmode=verify-full sslrootcert={SNAKEOIL}"
    ))
    .unwrap());
    // URL form, percent-encoded path.
    let url = support::pg_url().replacen("127.0.0.1", "localhost", 1);
    let sep = if url.contains('?') { '&' } else { '?' };
    let rootcert = SNAKEOIL.replace('/', "%2F");
    assert!(ssl_of(&format!(
        "{url}{sep}sslmode=verify-full&sslrootcert={rootcert}"
    ))
    .unwrap());
}

#[test]
fn client_certificates_and_bad_root_files_are_refused_clearly() {
    let kv = pairs();
    let e = ssl_of(&format!("{kv} sslcert=/tmp/c.pem sslkey=/tmp/k.pem")).unwrap_err();
    assert!(
        e.contains("client certificates (sslcert/sslkey) are not supported"),
        "{e}"
    );
    let e = ssl_of(&format!(
        "{kv} sslmode=verify-ca sslrootcert=/nonexistent/ca.pem"
    ))
    .unwrap_err();
    assert!(
        e.contains("cannot read sslrootcert `/nonexistent/ca.pem`"),
        "{e}"
    );
}

#[test]
fn doctor_names_the_fix_for_tls_failures() {
    server_has_ssl();
    let kv = pairs();
    let finding = |dsn: &str| {
        let r = doctor::check(dsn, &Options::default());
        r.findings
            .into_iter()
            .find(|f| f.id == "connect")
            .expect("a connect finding")
    };
    let f = finding(&format!("{kv} sslmode=verify-full sslrootcert={SNAKEOIL}"));
    assert_eq!(f.status, Status::Fail, "{f:?}");
    let fix = f.fix.clone().unwrap_or_default();
    assert!(fix.contains("host name it names"), "{f:?}");
    assert!(fix.contains("sslmode=verify-ca"), "{f:?}");
    let f = finding(&format!("{kv} sslmode=verify-ca"));
    assert_eq!(f.status, Status::Fail, "{f:?}");
    assert!(
        f.fix.clone().unwrap_or_default().contains("sslrootcert"),
        "{f:?}"
    );
    let f = finding(&format!("{kv} sslmode=verify-ca sslrootcert={SNAKEOIL}"));
    assert_eq!(f.status, Status::Ok, "{f:?}");
}
