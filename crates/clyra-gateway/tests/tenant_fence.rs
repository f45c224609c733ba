//! Tenant fence rules and DSN normalization.
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions build fixtures

use clyra_gateway::tenant_fence::{
    check, dsn_namespace_hash, normalize_dsn, FenceRule, TenantFenceConfig, TenantRead,
};
use proptest::prelude::*;
use serde_json::json;

fn rule(pointer: &str, read: TenantRead, require_known: bool) -> FenceRule {
    FenceRule {
        pointer: pointer.into(),
        read,
        require_known,
    }
}

fn prefix() -> TenantRead {
    TenantRead::Prefix {
        separators: vec![':', '/'],
    }
}

fn config() -> TenantFenceConfig {
    let mut cfg = TenantFenceConfig {
        rules: vec![
            rule("/tenant", TenantRead::Exact, false),
            rule("/table", prefix(), true),
            rule("/conn", TenantRead::Dsn, true),
        ],
        ..Default::default()
    };
    cfg.tenants.insert("acme".into());
    cfg.tenants.insert("globex".into());
    cfg.dsn_namespaces.insert(
        dsn_namespace_hash("postgres://app@db.globex.internal/prod").unwrap(),
        "globex".into(),
    );
    cfg.dsn_namespaces.insert(
        dsn_namespace_hash("postgres://app@db.acme.internal/prod").unwrap(),
        "acme".into(),
    );
    cfg.validate().unwrap();
    cfg
}

#[test]
fn own_resources_pass() {
    let payload = json!({
        "tenant": "acme",
        "table": "acme:orders",
        "conn": "postgresql://app:s3cret@DB.Acme.Internal:5432/prod?sslmode=require"
    });
    let d = check("acme", &payload, &config());
    assert!(d.allowed(), "{:?}", d.findings);
}

#[test]
fn missing_pointers_do_not_apply() {
    assert!(check("acme", &json!({"x": 1}), &config()).allowed());
    assert!(check("acme", &json!({"table": null}), &config()).allowed());
}

#[test]
fn exact_tenant_of_another_is_refused_and_names_the_owner() {
    let d = check("acme", &json!({"tenant": "globex"}), &config());
    assert_eq!(d.codes(), vec!["tenant.cross_tenant"]);
    let f = &d.findings[0];
    assert_eq!(f.pointer, "/tenant");
    assert_eq!(f.owner.as_deref(), Some("globex"));
    assert!(f.message.contains("`globex`") && f.message.contains("`acme`"));
}

#[test]
fn exact_unknown_tenant_only_refused_when_required() {
    let cfg = config();
    assert!(check("acme", &json!({"tenant": "initech"}), &cfg).allowed());
    let mut strict = cfg.clone();
    strict.rules[0].require_known = true;
    assert_eq!(
        check("acme", &json!({"tenant": "initech"}), &strict).codes(),
        vec!["tenant.unknown"]
    );
}

#[test]
fn prefix_rules_read_both_separators() {
    let cfg = config();
    for v in ["globex:orders", "globex/exports/x.csv"] {
        let d = check("acme", &json!({ "table": v }), &cfg);
        assert_eq!(d.codes(), vec!["tenant.cross_tenant"], "{v}");
        assert_eq!(d.findings[0].owner.as_deref(), Some("globex"));
    }
    assert!(check("acme", &json!({"table": "acme/x"}), &cfg).allowed());
    // No prefix, or an unknown one, with require_known.
    for v in ["orders", ":orders", "initech:orders"] {
        assert_eq!(
            check("acme", &json!({ "table": v }), &cfg).codes(),
            vec!["tenant.unknown"],
            "{v}"
        );
    }
}

#[test]
fn arrays_are_checked_per_element_with_their_pointer() {
    let d = check(
        "acme",
        &json!({"table": ["acme:a", "globex:b", 7, null]}),
        &config(),
    );
    let got: Vec<(&str, &str)> = d
        .findings
        .iter()
        .map(|f| (f.code.as_str(), f.pointer.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("tenant.cross_tenant", "/table/1"),
            ("tenant.not_text", "/table/2")
        ]
    );
}

#[test]
fn non_text_values_fail_closed() {
    let d = check("acme", &json!({"tenant": {"id": "acme"}}), &config());
    assert_eq!(d.codes(), vec!["tenant.not_text"]);
}

#[test]
fn dsn_of_another_tenant_is_refused_without_echoing_the_secret() {
    let payload = json!({"conn": "postgres://app:hunter2@db.globex.internal/prod"});
    let d = check("acme", &payload, &config());
    assert_eq!(d.codes(), vec!["tenant.cross_tenant"]);
    let f = &d.findings[0];
    assert_eq!(f.owner.as_deref(), Some("globex"));
    let rendered = serde_json::to_string(&d).unwrap();
    assert!(!rendered.contains("hunter2"), "{rendered}");
    assert!(!rendered.contains("db.globex.internal"), "{rendered}");
}

#[test]
fn unregistered_dsn_is_refused_with_its_namespace_hash() {
    let dsn = "postgres://app:pw@db.initech.internal/prod";
    let d = check("acme", &json!({ "conn": dsn }), &config());
    assert_eq!(d.codes(), vec!["tenant.unknown"]);
    let hash = dsn_namespace_hash(dsn).unwrap();
    assert!(d.findings[0].message.contains(&hash));
    assert!(!d.findings[0].message.contains("pw@"));
    // Unparsable DSNs name no tenant either.
    assert_eq!(
        check("acme", &json!({"conn": "not a dsn"}), &config()).codes(),
        vec!["tenant.unknown"]
    );
}

#[test]
fn dsn_normalization() {
    let n = |s: &str| normalize_dsn(s).unwrap();
    // Password, query, default port and host case go; scheme alias folds.
    assert_eq!(
        n("PostgreSQL://app:pw@DB.Example.COM:5432/Prod/?password=x#f"),
        "postgres://app@db.example.com/Prod"
    );
    assert_eq!(
        n("postgres://app@db.example.com:6543/prod"),
        "postgres://app@db.example.com:6543/prod"
    );
    assert_eq!(n("mysql://root:pw@H:3306/d"), "mysql://root@h/d");
    assert_eq!(n("postgres://u:p@[::1]:5432/d"), "postgres://u@[::1]/d");
    // libpq keyword form maps onto the same normal form.
    assert_eq!(
        n("host=DB.example.com port=5432 dbname=Prod user=app password='p w\\'x' sslmode=require"),
        "postgres://app@db.example.com/Prod"
    );
    assert_eq!(
        dsn_namespace_hash("host=db.example.com dbname=Prod user=app password=a").unwrap(),
        dsn_namespace_hash("postgresql://app:b@db.example.com:5432/Prod").unwrap()
    );
    // The user name is part of the namespace.
    assert_ne!(
        dsn_namespace_hash("postgres://a@h/d"),
        dsn_namespace_hash("postgres://b@h/d")
    );
    for bad in ["", "   ", "nonsense", "host=", "key='unterminated", "://x"] {
        assert!(normalize_dsn(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn config_validation_reports_every_problem() {
    let cfg: TenantFenceConfig = serde_json::from_value(json!({
        "rules": [
            {"pointer": "tenant", "read": {"kind": "exact"}},
            {"pointer": "/t", "read": {"kind": "prefix", "separators": []}},
            {"pointer": "/c", "read": {"kind": "dsn"}, "require_known": true}
        ],
        "dsn_namespaces": {"ABC": "x"}
    }))
    .unwrap();
    let errs = cfg.validate().unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(serde_json::from_value::<TenantFenceConfig>(json!({"rulez": []})).is_err());
    let cfg: TenantFenceConfig = serde_json::from_value(json!({
        "rules": [{"pointer": "/t", "read": {"kind": "prefix"}}]
    }))
    .unwrap();
    assert_eq!(
        cfg.rules[0].read,
        TenantRead::Prefix {
            separators: vec![':', '/']
        }
    );
}

proptest! {
    #[test]
    fn arbitrary_dsns_never_panic(s in ".{0,120}") {
        let _ = normalize_dsn(&s);
        let _ = check("acme", &json!({"conn": s.clone(), "table": s.clone(), "tenant": s}), &config());
    }

    #[test]
    fn password_never_changes_the_hash(pw in "[A-Za-z0-9!$%]{0,20}") {
        prop_assert_eq!(
            dsn_namespace_hash(&format!("postgres://app:{pw}@db.example.com/prod")),
            dsn_namespace_hash("postgres://app@db.example.com/prod")
        );
    }
}
