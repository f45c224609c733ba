//! `docs/recorder.md` tells the truth: its test vector is what `auth::sign` computes, and its
//! Python snippet computes the same signature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clyra_recorder::auth::{self, SignedParts};

const DOC: &str = include_str!("../../../docs/recorder.md");

fn vector_signature() -> String {
    let parts = SignedParts {
        method: "POST",
        path_and_query: "/v1/events",
        tenant: "acme",
        key_id: "k1",
        timestamp: 1_767_225_600,
        nonce: "0123456789abcdef0123456789abcdef",
        body: br#"{"kind":"demo.hello","body":{"n":1}}"#,
    };
    let signing = auth::signing_string(&parts);
    assert!(
        DOC.contains(&format!("```text\n{signing}\n```")),
        "the documented signing string differs from\n{signing}"
    );
    auth::sign(b"clyra-test-vector-secret-32-bytes!!", &parts)
}

#[test]
fn documented_signature_is_the_reference_one() {
    let sig = vector_signature();
    assert!(
        DOC.contains(&format!("`X-Clyra-Signature: {sig}`")),
        "docs/recorder.md does not show {sig}"
    );
}

#[test]
fn python_snippet_computes_the_vector() {
    let snippet = DOC
        .split("<!-- signing-snippet -->\n```python\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the Python snippet is missing from docs/recorder.md");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(snippet)
        .output()
        .expect("python3 is needed to test the documented Python snippet");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        vector_signature()
    );
}
