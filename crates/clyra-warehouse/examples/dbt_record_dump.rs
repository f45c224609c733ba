//! Prints what `clyra_warehouse::dbt::record` makes of a dbt target directory and JSON log, and
//! optionally writes it out for `clyra bundle build`:
//!
//! ```text
//! cargo run -p clyra-warehouse --example dbt_record_dump -- TARGET_DIR [LOG] [--interrupted] [--write DIR]
//! clyra bundle build --kind def --journal DIR/journal.ndjson --artifacts DIR/artifacts \
//!     --key keys/clyra.key --out run.def.zip
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: dbt_record_dump TARGET_DIR [LOG] [--interrupted] [--write DIR]";
    let dir = args.first().ok_or(usage)?;
    let log = match args.get(1).filter(|a| !a.starts_with("--")) {
        Some(p) => Some(clyra_warehouse::dbt::read_log(p.as_ref())?),
        None => None,
    };
    let write = args
        .iter()
        .position(|a| a == "--write")
        .map(|i| args.get(i + 1).ok_or(usage))
        .transpose()?;
    let t = clyra_warehouse::dbt::read_target(dir.as_ref())?;
    let ctx = clyra_warehouse::dbt::RecordContext {
        interrupted: args.iter().any(|a| a == "--interrupted"),
        replay: true,
        ..Default::default()
    };
    let r = clyra_warehouse::dbt::record(&t, log.as_ref(), &ctx)?;
    println!("{}", serde_json::to_string_pretty(&r.run)?);
    for e in &r.events {
        println!("{} {} {:?}", e.kind, e.id, e.ts.map(|t| t.to_string()));
    }
    for a in &r.artifacts {
        println!("artifact {} {} bytes", a.path, a.bytes.len());
    }
    print!("{}", r.lineage.to_text_tree());
    if let Some(out) = write {
        let out = std::path::Path::new(out);
        let mut journal = String::new();
        for e in &r.events {
            let mut m = e.body.as_object().cloned().unwrap_or_default();
            m.insert("kind".into(), Value::String(e.kind.clone()));
            if let Some(ts) = e.ts {
                m.insert("ts".into(), Value::String(ts.to_string()));
            }
            m.insert(
                "run_id".into(),
                Value::String(format!("dbt-{}", r.run.dbt.invocation_id)),
            );
            journal.push_str(&serde_json::to_string(&Value::Object(m))?);
            journal.push('\n');
        }
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("journal.ndjson"), journal)?;
        for a in &r.artifacts {
            let p = out.join("artifacts").join(&a.path);
            std::fs::create_dir_all(p.parent().ok_or("no parent")?)?;
            std::fs::write(p, &a.bytes)?;
        }
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
