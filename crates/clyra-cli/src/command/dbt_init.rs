//! `clyra dbt init`: wiring only; the plan, the YAML edits and the writes are in
//! `clyra_warehouse::dbt::init`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clyra_warehouse::dbt::init::{self, Action, InitError, Kind, Plan, Step};
use serde_json::json;

use crate::output::{Exit, Output};

const HELP: &str = "Changes, each printed (a second run changes nothing and says so):\n  \
.clyra/dbt/clyra_guard/   the clyra_guard dbt package of this clyra version (files that differ are rewritten)\n  \
packages.yml              `- local: .clyra/dbt/clyra_guard` (or dependencies.yml when it holds `packages:`)\n  \
dbt_project.yml           \"{{ clyra_guard.on_run_start() }}\" in on-run-start, \"{{ clyra_guard.on_run_end(results) }}\" in on-run-end\n  \
.clyra/policy.yaml        a starter policy (data_platform.warehouse_guard thresholds)\n  \
.clyra/keys/clyra.key     an Ed25519 signing key (0600), .clyra/trust.json trusting it\n  \
.gitignore                .clyra/keys/ and .clyra/runs/\n\
YAML files are edited line by line: comments, order, quoting, indentation and line endings stay as \
they are, and each edit is checked by parsing the file before and after. A file Clyra cannot edit \
safely (anchors or aliases on the hook keys, several documents, tabs, a hook list built by Jinja) \
stops everything: nothing is written, and the message names the file and line and prints the lines \
to add by hand. An existing policy, key or trust file is never overwritten.\n\n\
Examples:\n  \
clyra dbt init --project-dir jaffle_shop --dry-run   # the changes as diffs; nothing is written\n  \
clyra dbt init --project-dir jaffle_shop\n  \
cd jaffle_shop && dbt deps && clyra run -- dbt build";

/// Arguments of `clyra dbt init`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct InitArgs {
    /// The dbt project directory (holding dbt_project.yml).
    #[arg(long, default_value = ".")]
    pub project_dir: PathBuf,
    /// Print what would change (unified diffs for edited files) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `clyra dbt init`.
pub fn run(args: InitArgs, out: &Output) -> anyhow::Result<Exit> {
    let plan = match init::plan(&args.project_dir) {
        Ok(p) => p,
        Err(InitError::Refused(r)) => return Ok(refused(&args.project_dir, &r, out)),
        Err(e) => return Err(e.into()),
    };
    let applied = if args.dry_run {
        None
    } else {
        Some(init::apply(&plan)?)
    };
    let keyid = applied.as_ref().and_then(|a| a.keyid.clone());
    let next = next_steps(&args.project_dir);
    out.emit(
        &json!({
            "ok": true,
            "dry_run": args.dry_run,
            "project_dir": plan.project_dir,
            "project": plan.project_name,
            "package_version": plan.package_version,
            "changed": plan.changes_anything(),
            "keyid": keyid,
            "steps": plan.steps,
            "warnings": plan.warnings,
            "next_steps": next,
        }),
        || human(&plan, args.dry_run, keyid.as_deref(), &next),
    );
    Ok(Exit::Ok)
}

fn refused(dir: &Path, r: &init::yaml::Refused, out: &Output) -> Exit {
    let file = dir.join(&r.file);
    let message = format!(
        "cannot edit `{}` safely (line {}): {}",
        file.display(),
        r.line,
        r.reason
    );
    if out.is_json() {
        out.emit(
            &json!({
                "ok": false,
                "error": { "message": message },
                "refused": {
                    "file": file,
                    "line": r.line,
                    "reason": r.reason,
                    "add_by_hand": r.by_hand,
                },
            }),
            String::new,
        );
    } else {
        let indented: String = r.by_hand.lines().map(|l| format!("  {l}\n")).collect();
        eprintln!(
            "error: {message}\nnothing was written. Add these lines to {} by hand (to the existing \
             list where the key is already there), then run `clyra dbt init` again:\n\n{indented}",
            file.display()
        );
    }
    Exit::Error
}

fn next_steps(dir: &Path) -> Vec<String> {
    let mut steps = Vec::new();
    if dir != Path::new(".") {
        steps.push(format!("cd {}", dir.display()));
    }
    steps.push("dbt deps".to_owned());
    steps.push("clyra run -- dbt build".to_owned());
    steps.push(format!(
        "clyra verify {}/<bundle> --trust {}",
        init::BUNDLES_DIR,
        init::TRUST_PATH
    ));
    steps
}

fn files_n(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

fn verb(action: Action, dry_run: bool) -> &'static str {
    match (action, dry_run) {
        (Action::Create, false) => "created",
        (Action::Create, true) => "would create",
        (Action::Update, false) => "updated",
        (Action::Update, true) => "would update",
        (Action::Unchanged, _) => "ok",
    }
}

fn human(plan: &Plan, dry_run: bool, keyid: Option<&str>, next: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "clyra dbt init: dbt project `{}` in {}{}\n",
        plan.project_name.as_deref().unwrap_or("?"),
        plan.project_dir.display(),
        if dry_run {
            " (dry run: nothing is written)"
        } else {
            ""
        }
    );
    let mut rows: Vec<(Action, String, Vec<String>)> = Vec::new();
    // The package's files as one row.
    let files: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|st| st.kind == Kind::PackageFile)
        .collect();
    let version = plan.package_version.as_deref().unwrap_or("?");
    let created = files.iter().filter(|f| f.action == Action::Create).count();
    let rewritten: Vec<&str> = files
        .iter()
        .filter(|f| f.action == Action::Update)
        .map(|f| f.path.as_str())
        .collect();
    let (action, what) = if created == files.len() {
        (
            Action::Create,
            format!("clyra_guard {version}, {}", files_n(files.len())),
        )
    } else if created == 0 && rewritten.is_empty() {
        (
            Action::Unchanged,
            format!("clyra_guard {version}, current ({})", files_n(files.len())),
        )
    } else {
        let mut what = format!("clyra_guard {version}:");
        if created > 0 {
            let _ = write!(what, " {created} new");
        }
        if !rewritten.is_empty() {
            let _ = write!(
                what,
                " {} rewritten ({})",
                rewritten.len(),
                rewritten
                    .iter()
                    .map(|p| p
                        .trim_start_matches(init::PACKAGE_DIR)
                        .trim_start_matches('/'))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        (Action::Update, what)
    };
    rows.push((action, format!("{}/", init::PACKAGE_DIR), vec![what]));
    for st in plan.steps.iter().filter(|st| st.kind != Kind::PackageFile) {
        let mut what = st.what.clone();
        if st.kind == Kind::SigningKey && st.action == Action::Create {
            if let (Some(k), Some(first)) = (keyid, what.first_mut()) {
                let _ = write!(first, "; key id {k}");
            }
        }
        rows.push((st.action, st.path.clone(), what));
    }
    let verb_w = rows
        .iter()
        .map(|r| verb(r.0, dry_run).len())
        .max()
        .unwrap_or(0);
    let path_w = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (action, path, what) in &rows {
        for (i, w) in what.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(
                    s,
                    "  {:verb_w$}  {path:path_w$}  {w}",
                    verb(*action, dry_run)
                );
            } else {
                let _ = writeln!(s, "  {:verb_w$}  {:path_w$}  {w}", "", "");
            }
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(s, "\nwarning: {w}");
    }
    if dry_run {
        for st in &plan.steps {
            if let Some(d) = &st.diff {
                let _ = write!(s, "\n{d}");
            }
        }
    }
    if !plan.changes_anything() {
        let _ = writeln!(
            s,
            "\nnothing to change: the project is already set up for Clyra."
        );
    } else if dry_run {
        let _ = writeln!(s, "\nrun without --dry-run to make these changes.");
    }
    let _ = writeln!(
        s,
        "\nnext steps:\n{}",
        next.iter()
            .map(|n| format!("  {n}\n"))
            .collect::<String>()
            .trim_end()
    );
    let _ = writeln!(
        s,
        "\n`dbt deps` installs clyra_guard into dbt_packages/; `clyra run` journals each dbt run in \
         {} and seals a signed bundle into {}/ (signed with {}).",
        init::JOURNAL_STORE,
        init::BUNDLES_DIR,
        init::KEY_PATH
    );
    s
}
