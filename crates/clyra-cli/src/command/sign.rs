//! `clyra sign`: an in-toto Statement about files, signed as a DSSE envelope.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clyra_evidence::intoto::{self, Statement, Subject};
use clyra_evidence::keys::{self, Signer};
use clyra_evidence::{jcs, Digest};

use crate::command::{display_name, read_input, write_new_file};
use crate::output::{Exit, Output};

/// The arguments of this command.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Private key file (PKCS#8 PEM, mode 0600).
    #[arg(long)]
    pub key: PathBuf,
    /// The predicate type URI.
    #[arg(long)]
    pub predicate_type: String,
    /// A file the statement is about; repeat for several.
    #[arg(long = "subject", required = true)]
    pub subjects: Vec<PathBuf>,
    /// Write the envelope here instead of stdout (never over an existing file).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The predicate JSON, or `-` for stdin.
    pub predicate: PathBuf,
}

/// The subject for a file: its name as given and the SHA-256 of its bytes.
pub fn subject_of(path: &Path) -> anyhow::Result<Subject> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read subject `{}`", path.display()))?;
    Ok(Subject {
        name: path.to_string_lossy().into_owned(),
        digest: [("sha256".to_owned(), Digest::sha256(&bytes).to_hex())]
            .into_iter()
            .collect(),
    })
}

pub fn run(args: SignArgs, out: &Output) -> anyhow::Result<Exit> {
    let key = keys::read_private_key_file(&args.key)?;
    let predicate_bytes = read_input(&args.predicate)?;
    let predicate = jcs::parse_strict(&predicate_bytes).with_context(|| {
        format!(
            "predicate `{}` is not valid JSON",
            display_name(&args.predicate)
        )
    })?;
    let subjects = args
        .subjects
        .iter()
        .map(|p| subject_of(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let statement = Statement::new(subjects, args.predicate_type, predicate);
    let signers: [&dyn Signer; 1] = [&key];
    let envelope = intoto::sign_statement(&statement, &signers, jcs::canonicalize)?;
    let json = envelope.to_json();
    match &args.out {
        Some(path) => {
            write_new_file(path, format!("{json}\n").as_bytes())?;
            out.emit(
                &serde_json::json!({"ok": true, "envelope": path, "keyid": key.key_id().to_hex(),
                    "subjects": statement.subject.len()}),
                || {
                    format!(
                        "signed {} subject(s) with key {} -> {}",
                        statement.subject.len(),
                        key.key_id(),
                        path.display()
                    )
                },
            );
        }
        None => println!("{json}"),
    }
    Ok(Exit::Ok)
}
