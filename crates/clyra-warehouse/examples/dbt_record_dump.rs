//! Prints what `clyra_warehouse::dbt::record` makes of a target directory and a dbt JSON log:
//! `cargo run -p clyra-warehouse --example dbt_record_dump -- TARGET_DIR [LOG] [--interrupted]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .ok_or("usage: dbt_record_dump TARGET_DIR [LOG] [--interrupted]")?;
    let t = clyra_warehouse::dbt::read_target(dir.as_ref())?;
    let log = match args.get(1).filter(|a| !a.starts_with("--")) {
        Some(p) => Some(clyra_warehouse::dbt::read_log(p.as_ref())?),
        None => None,
    };
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
    if let Ok(path) = std::env::var("DBT_DUMP_SVG") {
        std::fs::write(path, r.lineage.to_svg())?;
    }
    Ok(())
}
