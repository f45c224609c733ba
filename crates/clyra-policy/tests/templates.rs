//! The policy templates under `templates/policy/` lint clean (no error, no warning), load, and
//! say what they are for in comments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn templates() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/policy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_four_templates_exist() {
    let names: Vec<String> = templates()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "complete.yaml",
        "data_platform.yaml",
        "genai_security.yaml",
        "voice_compliance.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
}

#[test]
fn every_template_lints_clean_and_loads() {
    for file in templates() {
        let report = clyra_policy::lint_file(&file);
        assert!(report.is_empty(), "{}:\n{report}", file.display());
        let loaded = clyra_policy::load_file(&file).unwrap();
        assert!(loaded.warnings.is_empty());
        assert_eq!(loaded.policy.version, 4);
        // Heavily commented: at least a third of the lines explain something.
        let text = std::fs::read_to_string(&file).unwrap();
        let comments = text
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count();
        assert!(
            comments * 3 >= text.lines().count() / 2,
            "{}: only {comments} comment lines",
            file.display()
        );
    }
}

#[test]
fn the_complete_template_sets_every_section() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/policy/complete.yaml");
    let loaded = clyra_policy::load_file(file).unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(clyra_policy::load::POLICY_SCHEMA_TEXT).unwrap();
    for section in schema["properties"].as_object().unwrap().keys() {
        assert!(
            loaded.value.get(section).is_some(),
            "complete.yaml does not set `{section}`"
        );
    }
    let p = &loaded.policy;
    assert!(!p.rules.is_empty());
    for (name, rules) in [
        ("data_platform", p.data_platform.as_ref().map(|s| &s.rules)),
        (
            "genai_security",
            p.genai_security.as_ref().map(|s| &s.rules),
        ),
        (
            "voice_compliance",
            p.voice_compliance.as_ref().map(|s| &s.rules),
        ),
        ("enforcement", p.enforcement.as_ref().map(|s| &s.rules)),
    ] {
        assert!(rules.is_some_and(|r| !r.is_empty()), "{name} has no rules");
    }
}
