//! `clyra keys`: generate and inspect keys, edit the trust file.

use std::path::Path;

use anyhow::Context as _;
use clyra_evidence::keys::{self, PrivateKey, Signer as _};
use clyra_evidence::trust::TrustStore;

use crate::cli::{KeysCommand, TrustCommand};
use crate::command::write_new_file;
use crate::output::{Exit, Output};

pub fn run(cmd: KeysCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        KeysCommand::Generate {
            alg,
            out: dir,
            name,
        } => generate(alg, &dir, &name, out),
        KeysCommand::Show { file } => show(&file, out),
        KeysCommand::Trust(TrustCommand::Add {
            trust,
            not_before,
            not_after,
            name,
            public_key,
        }) => trust_add(&trust, &public_key, not_before, not_after, name, out),
    }
}

/// Creates `DIR/NAME.key` (0600) and `DIR/NAME.pub`; used by `keys generate` and the demo.
pub fn generate_files(
    alg: keys::Algorithm,
    dir: &Path,
    name: &str,
) -> anyhow::Result<(PrivateKey, std::path::PathBuf, std::path::PathBuf)> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        anyhow::bail!("key name `{name}` must be a plain file name");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let key_path = dir.join(format!("{name}.key"));
    let pub_path = dir.join(format!("{name}.pub"));
    if pub_path.exists() {
        anyhow::bail!(
            "`{}` already exists; refusing to overwrite it",
            pub_path.display()
        );
    }
    let key = PrivateKey::generate(alg).with_context(|| format!("cannot generate a {alg} key"))?;
    keys::write_private_key_file(&key_path, &key)?;
    if let Err(e) = write_new_file(&pub_path, key.public_key().to_pem().as_bytes()) {
        // Leave nothing half-made: a private key without its public half is useless.
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok((key, key_path, pub_path))
}

fn generate(alg: keys::Algorithm, dir: &Path, name: &str, out: &Output) -> anyhow::Result<Exit> {
    let (key, key_path, pub_path) = generate_files(alg, dir, name)?;
    let keyid = key.key_id();
    out.emit(
        &serde_json::json!({
            "ok": true,
            "keyid": keyid.to_hex(),
            "algorithm": alg.as_str(),
            "private_key": key_path,
            "public_key": pub_path,
        }),
        || {
            format!(
                "generated {alg} key\n  key id   {keyid}\n  private  {} (mode 0600; keep it secret)\n  public   {}\n\
                 next: clyra keys trust add --trust trust.json {}",
                key_path.display(),
                pub_path.display(),
                pub_path.display()
            )
        },
    );
    Ok(Exit::Ok)
}

fn show(file: &Path, out: &Output) -> anyhow::Result<Exit> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let (public, private) = if text.contains("PRIVATE KEY-----") {
        let key = keys::read_private_key_file(file)?;
        (key.public_key().clone(), true)
    } else {
        (keys::read_public_key_file(file)?, false)
    };
    let pem = public.to_pem();
    out.emit(
        &serde_json::json!({
            "ok": true,
            "keyid": public.key_id().to_hex(),
            "algorithm": public.algorithm().as_str(),
            "private": private,
            "public_key": pem,
        }),
        || {
            format!(
                "key id     {}\nalgorithm  {}\nfile       {} ({})\n{pem}",
                public.key_id(),
                public.algorithm(),
                file.display(),
                if private { "private key" } else { "public key" }
            )
        },
    );
    Ok(Exit::Ok)
}

fn trust_add(
    trust_path: &Path,
    public_key: &Path,
    not_before: Option<jiff::Timestamp>,
    not_after: Option<jiff::Timestamp>,
    name: Option<String>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let key = keys::read_public_key_file(public_key)?;
    let mut store = if trust_path.exists() {
        TrustStore::read_file(trust_path)?
    } else {
        TrustStore::new()
    };
    let not_before = not_before.unwrap_or_else(jiff::Timestamp::now);
    let added = store.add(key, not_before, not_after, name)?;
    let keyid = added.key_id();
    let json = store.to_json_pretty()?;
    crate::command::replace_file(trust_path, json.as_bytes())?;
    out.emit(
        &serde_json::json!({
            "ok": true,
            "trust": trust_path,
            "keyid": keyid.to_hex(),
            "not_before": not_before.to_string(),
            "not_after": not_after.map(|t| t.to_string()),
            "keys": store.len(),
        }),
        || {
            format!(
                "trusted key {keyid} in {} from {not_before}{} ({} key(s) in the file)",
                trust_path.display(),
                not_after.map(|t| format!(" until {t}")).unwrap_or_default(),
                store.len()
            )
        },
    );
    Ok(Exit::Ok)
}
