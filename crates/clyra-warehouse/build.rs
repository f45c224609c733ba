//! Embeds the `clyra_guard` dbt package (the repository's `dbt/clyra_guard/`) into the crate, so
//! that `clyra dbt init` installs exactly the package this build was made with.
//!
//! Every file under the directory is embedded, sorted by its `/`-separated relative path, except
//! what dbt or editors leave behind there (hidden files, `target/`, `dbt_packages/`, `logs/`,
//! `__pycache__/`). Cargo reruns this script when anything in the directory changes.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Directories dbt, Python or a package's own test runs create; never part of the package.
const SKIP_DIRS: &[&str] = &["target", "dbt_packages", "logs", "__pycache__"];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?,
    );
    let root = manifest_dir.join("../../dbt/clyra_guard");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", root.display());
    if !root.join("dbt_project.yml").is_file() {
        return Err(format!(
            "the clyra_guard dbt package is missing: no `{}`",
            root.join("dbt_project.yml").display()
        )
        .into());
    }
    let mut files = Vec::new();
    walk(&root, &root, &mut files)?;
    files.sort();

    let mut out = String::from(
        "/// The clyra_guard package: (path relative to the package root, contents), sorted by path.\n\
         pub(crate) static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        println!("cargo:rerun-if-changed={}", abs.display());
        let abs = abs
            .to_str()
            .ok_or_else(|| format!("`{}` is not a UTF-8 path", abs.display()))?;
        writeln!(out, "    ({rel:?}, include_bytes!({abs:?})),")?;
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(out_dir.join("clyra_guard_package.rs"), out)?;
    Ok(())
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| format!("`{}` is not a UTF-8 file name", entry.path().display()))?;
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !SKIP_DIRS.contains(&name) {
                walk(root, &path, files)?;
            }
        } else if kind.is_file() {
            let rel = path.strip_prefix(root)?;
            let rel: Vec<&str> = rel
                .components()
                .map(|c| c.as_os_str().to_str().unwrap_or_default())
                .collect();
            files.push((rel.join("/"), path.canonicalize()?));
        }
        // Symlinks and other special files are not part of a package.
    }
    Ok(())
}
