//! Untrusted actions never panic the engine: any JSON either is refused with a pointer or gets a
//! decision, and explaining decides exactly as deciding does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clyra_policy::decide::{Action, Engine};
use clyra_policy::model::Policy;
use proptest::prelude::*;
use serde_json::{json, Value};

fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| {
        let policy: Policy =
            serde_json::from_str(include_str!("../benches/policy50.json")).unwrap();
        Engine::new(&policy, "sha256:props").unwrap()
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        (0.0f64..=1.0).prop_map(Value::from),
        "[a-z_.:/*-]{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("select"),
            Just("update"),
            Just("delete"),
            Just("finance"),
            Just("agent:copilot"),
            Just("sql.query"),
            Just("2026-03-01T22:00:00Z"),
            Just("DROP TABLE x"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,8}".boxed(),
                    prop_oneof![
                        Just("score".to_owned()),
                        Just("error".to_owned()),
                        Just("statement".to_owned()),
                        Just("schema".to_owned()),
                        Just("rows_affected".to_owned()),
                        Just("table_rows".to_owned()),
                        Just("records".to_owned()),
                        Just("destination".to_owned()),
                        Just("env".to_owned()),
                    ]
                    .boxed(),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn action() -> impl Strategy<Value = Value> {
    let kinds = prop_oneof![
        Just(json!("tool.call")),
        Just(json!("warehouse.dml")),
        Just(json!("warehouse.ddl")),
        Just(json!("activation.sync")),
        Just(json!("voice.call")),
        Just(json!("http.request")),
        json_value(),
    ];
    let members = prop::collection::btree_map(
        prop_oneof![
            Just("actor"),
            Just("route"),
            Just("tool"),
            Just("time"),
            Just("payload"),
            Just("warehouse"),
            Just("activation"),
            Just("detections"),
            Just("labels"),
            Just("extra"),
        ],
        json_value(),
        0..8,
    );
    (kinds, prop::option::of(json_value()), members).prop_map(|(kind, tenant, members)| {
        let mut o = serde_json::Map::new();
        o.insert("kind".into(), kind);
        o.insert("tenant".into(), tenant.unwrap_or(json!("acme")));
        for (k, v) in members {
            o.insert(k.to_owned(), v);
        }
        Value::Object(o)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_action_is_refused_with_a_pointer_or_decided(v in action()) {
        let engine = engine();
        match Action::from_value(v.clone()) {
            Err(e) => {
                // The pointer names a value that exists in the input.
                prop_assert!(v.pointer(&e.pointer).is_some() || e.message.contains("required"),
                    "{e} for {v}");
            }
            Ok(a) => {
                let now: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
                let d = engine.decide_at(&a, now);
                prop_assert_eq!(&d.action_sha256, a.sha256());
                let x = engine.explain_at(&a, Some(now));
                prop_assert_eq!(x.decision, d);
            }
        }
    }
}
