//! The mutation generator for valid bundles, shared by the mutation test
//! (`tests/bundle_mutations.rs`, which demands every mutant is rejected) and the conformance corpus
//! generator (`examples/gen_mutants.rs`, whose mutants both verifiers must agree on).
//!
//! A fixed-seed xorshift PRNG draws each mutant: byte flips, truncations, appended bytes, swapped,
//! deleted and duplicated entries, JSON edits (a member of a JSON entry, of one journal line or of
//! the signed statement changed, removed or added, re-serialized canonically and re-packed with
//! `zipstore::write`, so the container stays canonical and the edit reaches the later checks), and
//! edits of the envelope's unauthenticated parts. The directory-form case gets file-level mutants
//! the same way. Include it with `#[path]` beside `bundle_forge.rs` as `mod forge` at the crate root.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use clyra_evidence::bundle::{VerifyOptions, ATTESTATION_PATH, JOURNAL_PATH};
use clyra_evidence::dsse::Envelope;
use clyra_evidence::jcs;
use clyra_evidence::trust::TrustStore;
use serde_json::{json, Value};

use crate::forge::{self, rezip, unzip, Contents};

/// xorshift64* (Vigna): small, fast, and reproducible from one `u64`.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        (self.next() % n as u64) as usize
    }
}

/// FNV-1a: the per-case base seed, so adding a case does not move the others' mutants.
pub fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub fn mutant_seed(case: &str, i: u64) -> u64 {
    fnv(case) ^ (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

// ------------------------------------------------------------------------------------------------
// The cases

/// A valid golden vector: its case folder and what verifying it takes.
pub struct Case {
    /// `def/NAME` or `pef/NAME`.
    pub name: String,
    /// The case folder under `spec/*/test-vectors/`.
    pub dir: PathBuf,
    /// `bundle.zip`, or the `bundle/` directory.
    pub bundle: PathBuf,
    pub trust: TrustStore,
    pub at: jiff::Timestamp,
    pub threshold: usize,
    pub artifacts: Option<PathBuf>,
}

impl Case {
    pub fn options(&self) -> VerifyOptions<'_> {
        let mut o = VerifyOptions::new(&self.trust, self.at);
        o.threshold = self.threshold;
        o.artifacts_dir = self.artifacts.as_deref();
        o
    }
}

pub fn valid_cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for format in ["def", "pef"] {
        let dir = root.join("spec").join(format).join("test-vectors");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.ends_with("_fail") && !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let case = dir.join(&name);
            let expected: Value =
                serde_json::from_slice(&std::fs::read(case.join("expected.json")).unwrap())
                    .unwrap();
            assert_eq!(expected["verdict"], "valid", "{format}/{name}");
            let bundle = if case.join("bundle.zip").is_file() {
                case.join("bundle.zip")
            } else {
                case.join("bundle")
            };
            out.push(Case {
                name: format!("{format}/{name}"),
                dir: case.clone(),
                bundle,
                trust: TrustStore::read_file(&case.join("trust.json")).unwrap(),
                at: expected["verify_at"].as_str().unwrap().parse().unwrap(),
                threshold: expected["threshold"].as_u64().unwrap() as usize,
                artifacts: expected["artifacts"].as_str().map(|a| case.join(a)),
            });
        }
    }
    assert!(out.len() >= 6, "{} valid cases", out.len());
    out
}

// ------------------------------------------------------------------------------------------------
// JSON edits

/// JSON pointers of every node of `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Changes, removes or adds something at a random node of `v`; returns what it did.
fn edit_json(v: &mut Value, rng: &mut Rng) -> String {
    let mut all = Vec::new();
    pointers(v, String::new(), &mut all);
    let at = all[rng.below(all.len())].clone();
    let node = v.pointer_mut(&at).unwrap();
    let what = match node {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            if !keys.is_empty() && rng.below(2) == 0 {
                let k = &keys[rng.below(keys.len())];
                m.remove(k);
                format!("remove member `{k}`")
            } else {
                let k = ["zz", "extra", "seq", "a", "sig"][rng.below(5)];
                let value =
                    [json!(1), json!("x"), json!(null), json!([]), json!({})][rng.below(5)].clone();
                let what = format!("set member `{k}` to {value}");
                m.insert(k.to_owned(), value);
                what
            }
        }
        Value::Array(items) => match rng.below(4) {
            0 if !items.is_empty() => {
                let i = rng.below(items.len());
                items.remove(i);
                format!("remove element {i}")
            }
            1 if !items.is_empty() => {
                let i = rng.below(items.len());
                let copy = items[i].clone();
                items.insert(i, copy);
                format!("duplicate element {i}")
            }
            2 if items.len() >= 2 => {
                items.reverse();
                "reverse".to_owned()
            }
            _ => {
                items.push(json!(0));
                "push 0".to_owned()
            }
        },
        Value::String(s) => match rng.below(4) {
            0 => {
                s.push('x');
                "append `x`".to_owned()
            }
            1 => {
                s.pop();
                "drop the last character".to_owned()
            }
            2 => {
                *s = String::new();
                "empty it".to_owned()
            }
            _ => {
                let chars: Vec<char> = s.chars().collect();
                if chars.is_empty() {
                    s.push('0');
                    "set to `0`".to_owned()
                } else {
                    let i = rng.below(chars.len());
                    let c = chars[i];
                    let to = if c.is_ascii_alphanumeric() {
                        if c == 'z' || c == 'Z' || c == '9' {
                            ((c as u8) - 1) as char
                        } else {
                            ((c as u8) + 1) as char
                        }
                    } else {
                        'a'
                    };
                    *s = chars
                        .iter()
                        .enumerate()
                        .map(|(j, ch)| if j == i { to } else { *ch })
                        .collect();
                    format!("character {i} `{c}` -> `{to}`")
                }
            }
        },
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            let (value, what) = match rng.below(5) {
                0 => (json!(f + 1.0), "+1"),
                1 => (json!(f - 1.0), "-1"),
                2 => (json!(f * 2.0), "*2"),
                3 => (json!(f + 0.5), "+0.5"),
                _ => (json!(n.to_string()), "as a string"),
            };
            *node = value;
            format!("number {what}")
        }
        Value::Bool(b) => {
            *b = !*b;
            "flip the boolean".to_owned()
        }
        Value::Null => {
            *node = json!(0);
            "null -> 0".to_owned()
        }
    };
    format!("at `{at}`: {what}")
}

/// Canonical bytes when possible, else plain JSON (an edit may produce a number the strict
/// profile refuses, which is a mutant too).
fn serialize(v: &Value) -> Vec<u8> {
    jcs::canonicalize_value(v).unwrap_or_else(|_| serde_json::to_vec(v).unwrap())
}

/// Applies a JSON edit to one JSON file of `c`, one journal line, or the signed statement inside
/// the envelope (re-encoded, not re-signed).
fn json_mutation(c: &mut Contents, rng: &mut Rng) -> String {
    let mut targets: Vec<String> = c.keys().filter(|k| k.ends_with(".json")).cloned().collect();
    targets.push("journal line".into());
    targets.push("signed statement".into());
    let target = targets[rng.below(targets.len())].clone();
    match target.as_str() {
        "journal line" => {
            let text = c[JOURNAL_PATH].clone();
            let mut lines: Vec<Vec<u8>> = text
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            let i = rng.below(lines.len());
            let mut v: Value = serde_json::from_slice(&lines[i]).unwrap();
            let what = edit_json(&mut v, rng);
            lines[i] = serialize(&v);
            let mut out = Vec::new();
            for l in &lines {
                out.extend_from_slice(l);
                out.push(b'\n');
            }
            c.insert(JOURNAL_PATH.into(), out);
            format!("json edit of journal line {i} {what}")
        }
        "signed statement" => {
            let mut env: Value = serde_json::from_slice(&c[ATTESTATION_PATH]).unwrap();
            let b64 = base64::engine::general_purpose::STANDARD;
            let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
            let mut statement: Value = serde_json::from_slice(&payload).unwrap();
            let what = edit_json(&mut statement, rng);
            env["payload"] = json!(b64.encode(serialize(&statement)));
            c.insert(ATTESTATION_PATH.into(), serialize(&env));
            format!("json edit of the signed statement {what}")
        }
        path => {
            let mut v: Value = serde_json::from_slice(&c[path]).unwrap();
            let what = edit_json(&mut v, rng);
            c.insert(path.to_owned(), serialize(&v));
            format!("json edit of {path} {what}")
        }
    }
}

// ------------------------------------------------------------------------------------------------
// ZIP mutants

fn flip_bytes(bytes: &mut [u8], rng: &mut Rng) -> String {
    let n = 1 + rng.below(4);
    let mut flips = Vec::new();
    for _ in 0..n {
        let at = rng.below(bytes.len());
        let x = 1 + rng.below(255) as u8;
        bytes[at] ^= x;
        flips.push(format!("{at}^{x:#04x}"));
    }
    format!("flip bytes {}", flips.join(", "))
}

/// Packs `c` into a container with a raw duplicate of `name`: written under a
/// placeholder of the same length that sorts right after it, then renamed in both headers.
fn with_raw_duplicate(c: &Contents, name: &str) -> Option<Vec<u8>> {
    let mut placeholder = name.as_bytes().to_vec();
    let last = placeholder.last_mut()?;
    *last = last.checked_add(1).filter(|b| b.is_ascii_alphanumeric())?;
    let placeholder = String::from_utf8(placeholder).ok()?;
    // Nothing may sort between the two, and the placeholder must be a new name.
    if let Some((next, _)) = c.range(name.to_owned()..).nth(1) {
        if next.as_str() <= placeholder.as_str() {
            return None;
        }
    }
    let mut with = c.clone();
    with.insert(placeholder.clone(), c[name].clone());
    let mut bytes = rezip(&with);
    forge::replace_all(&mut bytes, placeholder.as_bytes(), name.as_bytes());
    Some(bytes)
}

pub fn mutate_zip(original: &[u8], rng: &mut Rng) -> (String, Vec<u8>) {
    let mut c = unzip(original);
    let names: Vec<String> = c.keys().cloned().collect();
    match rng.below(11) {
        9 | 10 => {
            let what = signature_mutation(&mut c, rng);
            (what, rezip(&c))
        }
        0 => {
            let mut m = original.to_vec();
            let what = flip_bytes(&mut m, rng);
            (what, m)
        }
        1 => {
            let cut = rng.below(original.len());
            (format!("truncate to {cut} bytes"), original[..cut].to_vec())
        }
        2 => {
            let n = 1 + rng.below(64);
            let mut m = original.to_vec();
            m.extend((0..n).map(|_| rng.below(256) as u8));
            (format!("append {n} random bytes"), m)
        }
        3 => {
            let i = rng.below(names.len());
            let j = (i + 1 + rng.below(names.len() - 1)) % names.len();
            let (a, b) = (c[&names[i]].clone(), c[&names[j]].clone());
            c.insert(names[i].clone(), b);
            c.insert(names[j].clone(), a);
            (
                format!("swap the contents of `{}` and `{}`", names[i], names[j]),
                rezip(&c),
            )
        }
        4 => {
            let name = &names[rng.below(names.len())];
            c.remove(name);
            (format!("delete `{name}`"), rezip(&c))
        }
        5 => {
            let name = names[rng.below(names.len())].clone();
            match rng.below(3) {
                0 => match with_raw_duplicate(&c, &name) {
                    Some(bytes) => (
                        format!("duplicate entry `{name}` under the same name"),
                        bytes,
                    ),
                    None => {
                        c.insert(format!("artifacts/dup/{name}"), c[&name].clone());
                        (
                            format!("copy `{name}` to `artifacts/dup/{name}`"),
                            rezip(&c),
                        )
                    }
                },
                1 => {
                    let upper = name[..1].to_ascii_uppercase() + &name[1..];
                    c.insert(upper.clone(), c[&name].clone());
                    (format!("copy `{name}` to `{upper}`"), rezip(&c))
                }
                _ => {
                    c.insert(format!("artifacts/dup/{name}"), c[&name].clone());
                    (
                        format!("copy `{name}` to `artifacts/dup/{name}`"),
                        rezip(&c),
                    )
                }
            }
        }
        _ => {
            let what = json_mutation(&mut c, rng);
            (what, rezip(&c))
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Directory mutants

pub fn read_dir_contents(root: &Path) -> Contents {
    fn walk(root: &Path, dir: &Path, out: &mut Contents) {
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().unwrap().to_owned())
                    .collect();
                out.insert(rel.join("/"), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = Contents::new();
    walk(root, root, &mut out);
    out
}

pub fn write_dir_contents(root: &Path, c: &Contents) {
    for (path, bytes) in c {
        let target = path.split('/').fold(root.to_path_buf(), |p, s| p.join(s));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
}

pub fn mutate_dir(original: &Contents, rng: &mut Rng) -> (String, Contents) {
    let mut c = original.clone();
    let names: Vec<String> = c.keys().cloned().collect();
    let name = names[rng.below(names.len())].clone();
    let what = match rng.below(9) {
        8 => signature_mutation(&mut c, rng),
        0 => {
            let what = flip_bytes(c.get_mut(&name).unwrap(), rng);
            format!("in `{name}`: {what}")
        }
        1 => {
            let f = c.get_mut(&name).unwrap();
            let cut = rng.below(f.len());
            f.truncate(cut);
            format!("truncate `{name}` to {cut} bytes")
        }
        2 => {
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
            c.get_mut(&name).unwrap().extend(bytes);
            format!("append {n} random bytes to `{name}`")
        }
        3 => {
            c.remove(&name);
            format!("delete `{name}`")
        }
        4 => {
            let extra = ["artifacts/notes.txt", "README", "journal.ndjson.orig"][rng.below(3)];
            c.insert(extra.to_owned(), b"x".to_vec());
            format!("add `{extra}`")
        }
        5 => {
            let other = &names[(names.iter().position(|n| *n == name).unwrap() + 1) % names.len()];
            let (a, b) = (c[&name].clone(), c[other].clone());
            c.insert(name.clone(), b);
            c.insert(other.clone(), a);
            format!("swap the contents of `{name}` and `{other}`")
        }
        _ => json_mutation(&mut c, rng),
    };
    (what, c)
}

// ------------------------------------------------------------------------------------------------
// Envelope edits DSSE alone would not notice

/// Edits the attestation's unauthenticated parts: a `keyid` changed or removed, a signature
/// repeated, or an ECDSA signature replaced by its high-s twin `(r, n - s)`, which verifies too.
fn signature_mutation(c: &mut Contents, rng: &mut Rng) -> String {
    let Ok(mut env) = Envelope::from_json(&c[ATTESTATION_PATH]) else {
        return "attestation unreadable: no change".to_owned();
    };
    let i = rng
        .below(env.signatures.len().max(1))
        .min(env.signatures.len().saturating_sub(1));
    let what = match rng.below(4) {
        0 => {
            env.signatures[i].keyid = None;
            format!("remove keyid of signature {i}")
        }
        1 => {
            env.signatures[i].keyid = Some(format!("{:064x}", rng.next()));
            format!("replace keyid of signature {i}")
        }
        2 => {
            let dup = env.signatures[i].clone();
            env.signatures.push(dup);
            format!("repeat signature {i}")
        }
        _ => match high_s_twin(&env.signatures[i].sig) {
            Some(twin) => {
                env.signatures[i].sig = twin;
                format!("replace signature {i} by its high-s twin")
            }
            None => {
                env.signatures[i].keyid = None;
                format!("remove keyid of signature {i} (not ECDSA)")
            }
        },
    };
    c.insert(ATTESTATION_PATH.to_owned(), jcs_bytes(&env));
    what
}

fn jcs_bytes(env: &Envelope) -> Vec<u8> {
    clyra_evidence::jcs::canonicalize(env.to_json().as_bytes()).unwrap()
}

/// `(r, n - s)` for a DER ECDSA P-256 signature, or `None` if `sig` is not one.
fn high_s_twin(sig: &[u8]) -> Option<Vec<u8>> {
    // DER: 30 len 02 rlen r 02 slen s; rebuilt with minimal integer encodings.
    if sig.len() < 8 || sig[0] != 0x30 || sig[2] != 0x02 {
        return None;
    }
    let rlen = usize::from(sig[3]);
    let r = sig.get(4..4 + rlen)?;
    if *sig.get(4 + rlen)? != 0x02 {
        return None;
    }
    let slen = usize::from(*sig.get(5 + rlen)?);
    let s = sig.get(6 + rlen..6 + rlen + slen)?;
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let mut s32 = [0u8; 32];
    let s_trim: Vec<u8> = s.iter().copied().skip_while(|b| *b == 0).collect();
    if s_trim.len() > 32 {
        return None;
    }
    s32[32 - s_trim.len()..].copy_from_slice(&s_trim);
    // n - s, big-endian subtraction.
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for k in (0..32).rev() {
        let mut d = i16::from(N[k]) - i16::from(s32[k]) - borrow;
        borrow = if d < 0 { 1 } else { 0 };
        if d < 0 {
            d += 256;
        }
        out[k] = d as u8;
    }
    let int = |v: &[u8]| {
        let mut t: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        if t.first().is_some_and(|b| *b & 0x80 != 0) {
            t.insert(0, 0);
        }
        let mut e = vec![0x02, t.len() as u8];
        e.extend(t);
        e
    };
    let body = [int(r), int(&out)].concat();
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    Some(der)
}
