//! RFC 8785 vectors from cyberphone/json-canonicalization (see `vectors/jcs/README.md`): one test
//! per input file, compared byte for byte, and the 10,000 ES6 number-formatting lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use clyra_evidence::jcs;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/jcs")
}

fn check(name: &str) {
    let input = std::fs::read(dir().join("input").join(format!("{name}.json"))).unwrap();
    let want = std::fs::read(dir().join("output").join(format!("{name}.json"))).unwrap();
    let hex = std::fs::read_to_string(dir().join("outhex").join(format!("{name}.txt"))).unwrap();
    let want_hex: Vec<u8> = hex
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    assert_eq!(want, want_hex, "output and outhex disagree for {name}");
    let got = jcs::canonicalize(&input).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "{name}"
    );
    assert_eq!(got, want, "{name}");
    assert!(jcs::is_canonical(&want).unwrap());
}

#[test]
fn arrays() {
    check("arrays");
}
#[test]
fn french() {
    check("french");
}
#[test]
fn structures() {
    check("structures");
}
#[test]
fn unicode() {
    check("unicode");
}
#[test]
fn values() {
    check("values");
}
#[test]
fn weird() {
    check("weird");
}

#[test]
fn every_input_file_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(dir().join("input"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "arrays",
            "french",
            "structures",
            "unicode",
            "values",
            "weird"
        ],
        "a vector file was added or removed: add or remove its test above"
    );
}

#[test]
fn es6_numbers_10k() {
    let text = std::fs::read_to_string(dir().join("numbers/es6testfile10k.txt")).unwrap();
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        let (hex, want) = line.split_once(',').unwrap();
        let bits = u64::from_str_radix(hex, 16).unwrap();
        let got = jcs::format_number(f64::from_bits(bits)).unwrap();
        assert_eq!(got, want, "line {}: bits {hex}", i + 1);
        count += 1;
    }
    assert_eq!(count, 10_000);
}
