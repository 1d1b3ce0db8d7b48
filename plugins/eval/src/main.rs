//! `cloister-eval [FEATURE] [--limit N] [--verbose] [--json FILE]`: the
//! evaluation tables of the summarise and suggest plugins with the real
//! model. Run it through `cargo xtask eval`, which builds the plugins and
//! installs the model first.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use cloister_eval::{Feature, cases, evaluate, report, workspace_root};

#[derive(Parser)]
#[command(about = "Score the summarise and suggest plugins on their evaluation sets")]
struct Cli {
    /// `summarise` or `suggest` (default: both).
    feature: Option<String>,
    /// Run only the first N cases of each set.
    #[arg(long)]
    limit: Option<usize>,
    /// A row per answer, with its text, after the totals.
    #[arg(long)]
    verbose: bool,
    /// Also write totals and every case's answers as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Read the set from this file instead of `plugins/<feature>/eval/cases.json`
    /// (needs FEATURE).
    #[arg(long, requires = "feature")]
    set: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let features = match cli.feature.as_deref() {
        None => Feature::ALL.to_vec(),
        Some(name) => match Feature::from_name(name) {
            Some(feature) => vec![feature],
            None => bail!("no evaluation for `{name}`: choose summarise or suggest"),
        },
    };
    let mut json = serde_json::Map::new();
    for feature in features {
        let path = cli
            .set
            .clone()
            .unwrap_or_else(|| cases::default_path(workspace_root(), feature));
        let set = cases::load(&path)?;
        if set.feature != feature {
            bail!("{} is a {} set", path.display(), set.feature.name());
        }
        let cases = &set.cases[..cli.limit.unwrap_or(usize::MAX).min(set.cases.len())];
        eprintln!(
            "{}: {} cases from {}",
            feature.name(),
            cases.len(),
            path.display()
        );
        let (totals, results) = evaluate(feature, cases, |r| {
            eprintln!(
                "  {} ({} ms){}",
                r.id,
                r.latency_ms,
                r.error
                    .as_deref()
                    .map_or(String::new(), |e| format!(": {e}"))
            );
        })?;
        println!(
            "{}",
            report::markdown(feature, &totals, &results, cli.verbose)
        );
        json.insert(
            feature.name().to_owned(),
            serde_json::to_value(report::FeatureReport {
                feature,
                totals: &totals,
                cases: &results,
            })?,
        );
    }
    if let Some(path) = cli.json {
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
