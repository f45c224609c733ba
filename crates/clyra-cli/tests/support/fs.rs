//! Copying fixture trees.
#![allow(dead_code)]

use std::path::Path;

/// Copies `from` into `to` recursively (files and directories), leaving out entries named in
/// `skip` at any depth.
pub fn copy_dir(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_dir(&e.path(), &to.join(&name), skip);
        } else if t.is_file() {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}
