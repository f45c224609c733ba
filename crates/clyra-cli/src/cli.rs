//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::output::Format;

/// Clyra makes automated work provable: it guards, records and proves what data pipelines, AI
/// agents and automations do to production systems.
#[derive(Debug, Parser)]
#[command(name = "clyra", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok, 1 error, 2 verification failed, 3 blocked by policy.\n\
Docs: docs/cli.md. Start with `clyra demo`."
)]
pub struct Cli {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the RFC 8785 canonical form of a JSON document to stdout.
    #[command(
        after_help = "Input is checked under Clyra's strict profile first: duplicate keys, lone \
surrogates, integers beyond ±(2^53−1), non-finite numbers and nesting deeper than 128 are errors \
naming the line, column and JSON pointer (exit 1).\n\n\
Example:\n  echo '{\"b\": 1.50, \"a\": [true]}' | clyra canon -\n  {\"a\":[true],\"b\":1.5}"
    )]
    Canon {
        /// The JSON file, or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// RFC 9162 Merkle tree roots, inclusion and consistency proofs.
    #[command(subcommand)]
    Merkle(MerkleCommand),
}

#[derive(Debug, Subcommand)]
pub enum MerkleCommand {
    /// Print the RFC 9162 Merkle root of a list of leaves.
    #[command(after_help = "Input: one leaf per line, the hex of the leaf's bytes (usually a digest of \
the leaf's data); blank lines and lines starting with # are skipped. Leaf hash = SHA-256(0x00 || bytes).\n\n\
Example:\n  printf '%s\\n' 00 10 2021 | clyra merkle root -\n  aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77")]
    Root {
        /// The leaf list, or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Write an inclusion or consistency proof (JSON) to stdout.
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Check a proof against roots you trust (exit 2 if it does not hold).
    #[command(subcommand)]
    Verify(VerifyProofCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Prove that leaf INDEX is in the tree of all leaves in FILE.
    #[command(after_help = "Example:\n  printf '%s\\n' 00 10 2021 > leaves.txt\n  \
clyra merkle prove inclusion --index 1 leaves.txt > proof.json")]
    Inclusion {
        /// Zero-based index of the leaf.
        #[arg(long)]
        index: u64,
        /// The leaf list (as for `merkle root`), or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Prove that the first OLD_SIZE leaves form a prefix of the tree of all leaves in FILE.
    #[command(after_help = "Example:\n  clyra merkle prove consistency --old-size 2 leaves.txt > consistency.json")]
    Consistency {
        /// Size of the older tree (at least 1).
        #[arg(long)]
        old_size: u64,
        /// The leaf list (as for `merkle root`), or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum VerifyProofCommand {
    /// Check that LEAF is included under ROOT.
    #[command(after_help = "The root must come from a source you trust (a signed checkpoint), not \
from the proof file.\n\nExample:\n  clyra merkle verify inclusion --proof proof.json --leaf 10 \\\n    \
--root aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77")]
    Inclusion {
        /// Proof file from `merkle prove inclusion`.
        #[arg(long)]
        proof: PathBuf,
        /// The trusted root (64 hex characters).
        #[arg(long)]
        root: clyra_evidence::Digest,
        /// The leaf's bytes in hex, as in the leaf list.
        #[arg(long)]
        leaf: String,
    },
    /// Check that the tree with OLD_ROOT is a prefix of the tree with NEW_ROOT.
    #[command(after_help = "Example:\n  clyra merkle verify consistency --proof consistency.json \\\n    \
--old-root fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125 \\\n    \
--new-root aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77")]
    Consistency {
        /// Proof file from `merkle prove consistency`.
        #[arg(long)]
        proof: PathBuf,
        /// The trusted root of the older tree.
        #[arg(long)]
        old_root: clyra_evidence::Digest,
        /// The trusted root of the newer tree.
        #[arg(long)]
        new_root: clyra_evidence::Digest,
    },
}
