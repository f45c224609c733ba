//! Entry points for the fuzz targets in `fuzz/`: each takes untrusted bytes, must never panic, and
//! asserts the invariants that hold whenever the input is accepted. Not a stable API.

/// Policy loading: arbitrary bytes as a policy file. Whatever is accepted re-loads from its own
/// JSON rendering to the same value and hash, and lint agrees that it has no error.
pub fn load(data: &[u8]) {
    let lint = crate::lint::lint_bytes("fuzz.yaml", data);
    let Ok(loaded) = crate::load::load_bytes("fuzz.yaml", data) else {
        #[allow(clippy::panic)]
        if !lint.has_errors() {
            panic!("load failed but lint found no error");
        }
        return;
    };
    #[allow(clippy::panic)]
    if lint.has_errors() {
        panic!("load succeeded but lint found errors");
    }
    let Ok(json) = serde_json::to_vec(&loaded.value) else {
        return;
    };
    #[allow(clippy::panic)]
    match crate::load::load_bytes("fuzz.json", &json) {
        Ok(again) if again.value == loaded.value && again.hash == loaded.hash => {}
        Ok(_) => panic!("the JSON rendering of an accepted policy loads to another value"),
        Err(e) => panic!("the JSON rendering of an accepted policy is refused: {e}"),
    }
}
