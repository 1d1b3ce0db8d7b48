//! Totals of a feature's results, as a markdown table and as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cases::Feature;
use crate::run::CaseResult;

/// A feature's totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Cases run.
    pub cases: usize,
    /// Cases the plugin answered with an error (their facts count as missed).
    pub errors: usize,
    /// Answers scored: summaries, or rewrites.
    pub answers: usize,
    /// Required facts present, over required facts (summarise: per summary;
    /// suggest: per rewrite), in percent.
    pub fact_recall_pct: f64,
    /// Answers with at least one invented name, number, time or date, in percent.
    pub invented_pct: f64,
    /// Cases with a planted instruction.
    pub injection_cases: usize,
    /// Those whose answer shows a sign of it, in percent.
    pub injection_success_pct: f64,
    /// Suggest: rewrites that drop or change a kept fact or invent one, in percent.
    pub changed_rewrites_pct: Option<f64>,
    /// Answers over the word limit.
    pub length_violations: usize,
    /// Median latency per case.
    pub p50_ms: u64,
    /// 95th percentile latency per case.
    pub p95_ms: u64,
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Rounded to one decimal, so JSON and the table agree.
        (1000.0 * part as f64 / whole as f64).round() / 10.0
    }
}

/// The `q`-quantile (nearest rank) of `values`.
fn quantile(values: &[u64], q: f64) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Totals of `results` of `feature`.
pub fn totals(feature: Feature, results: &[CaseResult]) -> Totals {
    let answers: Vec<_> = results.iter().flat_map(|r| &r.answers).collect();
    let required: usize = results
        .iter()
        .map(|r| r.facts * r.answers.len().max(1))
        .sum();
    let present: usize = results
        .iter()
        .flat_map(|r| r.answers.iter().map(|a| r.facts - a.missing.len()))
        .sum();
    let injection: Vec<_> = results
        .iter()
        .filter(|r| r.tags.iter().any(|t| t == "injection"))
        .collect();
    let injected = injection
        .iter()
        .filter(|r| r.answers.iter().any(|a| !a.injection_signs.is_empty()))
        .count();
    let latencies: Vec<u64> = results.iter().map(|r| r.latency_ms).collect();
    Totals {
        cases: results.len(),
        errors: results.iter().filter(|r| r.error.is_some()).count(),
        answers: answers.len(),
        fact_recall_pct: pct(present, required),
        invented_pct: pct(
            answers.iter().filter(|a| !a.invented.is_empty()).count(),
            answers.len(),
        ),
        injection_cases: injection.len(),
        injection_success_pct: pct(injected, injection.len()),
        changed_rewrites_pct: (feature == Feature::Suggest).then(|| {
            pct(
                answers.iter().filter(|a| a.changes_facts()).count(),
                answers.len(),
            )
        }),
        length_violations: answers.iter().filter(|a| a.too_long).count(),
        p50_ms: quantile(&latencies, 0.5),
        p95_ms: quantile(&latencies, 0.95),
    }
}

/// A feature's table: the totals, and with `verbose` a row per case.
pub fn markdown(
    feature: Feature,
    totals: &Totals,
    results: &[CaseResult],
    verbose: bool,
) -> String {
    let mut out = format!("### {}\n\n", feature.name());
    let changed = totals
        .changed_rewrites_pct
        .map_or_else(|| "n/a".to_owned(), |p| format!("{p:.1} %"));
    let _ = writeln!(
        out,
        "| cases | errors | answers | fact recall | answers with an invented fact | injection success | rewrites changing a name/number/time | length violations | p50 latency | p95 latency |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {:.1} % | {:.1} % | {:.1} % of {} | {} | {} | {} ms | {} ms |",
        totals.cases,
        totals.errors,
        totals.answers,
        totals.fact_recall_pct,
        totals.invented_pct,
        totals.injection_success_pct,
        totals.injection_cases,
        changed,
        totals.length_violations,
        totals.p50_ms,
        totals.p95_ms,
    );
    if verbose {
        let _ = writeln!(
            out,
            "\n| case | tags | missing facts | invented | injection signs | words (limit) | ms | answer |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for result in results {
            if let Some(error) = &result.error {
                let _ = writeln!(
                    out,
                    "| {} | {} | all {} | | | | {} | error: {} |",
                    result.id,
                    result.tags.join(" "),
                    result.facts,
                    result.latency_ms,
                    cell(error)
                );
            }
            for answer in &result.answers {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} ({}) | {} | {} |",
                    result.id,
                    result.tags.join(" "),
                    cell(&answer.missing.join(", ")),
                    cell(&answer.invented.join(", ")),
                    cell(&answer.injection_signs.join(", ")),
                    answer.words,
                    result.max_words,
                    result.latency_ms,
                    cell(&answer.text)
                );
            }
        }
    }
    out
}

/// Text that fits in one table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " / ")
}

/// One feature's part of the JSON report.
#[derive(Debug, Serialize)]
pub struct FeatureReport<'a> {
    /// The feature.
    pub feature: Feature,
    /// Its totals.
    pub totals: &'a Totals,
    /// Every case.
    pub cases: &'a [CaseResult],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Answer;

    fn answer(missing: usize, invented: bool, too_long: bool) -> Answer {
        Answer {
            text: "text".into(),
            words: 1,
            missing: vec!["f".into(); missing],
            invented: if invented { vec!["7pm".into()] } else { vec![] },
            injection_signs: vec![],
            too_long,
        }
    }

    fn result(id: &str, facts: usize, answers: Vec<Answer>, ms: u64) -> CaseResult {
        CaseResult {
            id: id.into(),
            tags: vec![],
            facts,
            max_words: 10,
            error: answers.is_empty().then(|| "unusable-output".into()),
            answers,
            latency_ms: ms,
        }
    }

    #[test]
    fn totals_count_errors_as_missed_facts_and_rewrites_one_by_one() {
        let mut injected = result("i", 0, vec![answer(0, false, false)], 30);
        injected.tags = vec!["injection".into()];
        injected.answers[0].injection_signs = vec!["PWNED".into()];
        let results = vec![
            result(
                "a",
                4,
                vec![answer(1, false, false), answer(0, true, true)],
                10,
            ),
            result("b", 2, vec![], 20),
            injected,
        ];
        let t = totals(Feature::Suggest, &results);
        // 3 + 4 present of 4 + 4 + 2 required.
        assert_eq!(t.fact_recall_pct, 70.0);
        assert_eq!((t.cases, t.errors, t.answers), (3, 1, 3));
        assert_eq!(t.invented_pct, 33.3);
        assert_eq!(t.changed_rewrites_pct, Some(66.7));
        assert_eq!((t.injection_cases, t.injection_success_pct), (1, 100.0));
        assert_eq!(t.length_violations, 1);
        assert_eq!((t.p50_ms, t.p95_ms), (20, 30));
        let table = markdown(Feature::Suggest, &t, &results, true);
        assert!(
            table.contains(
                "| 3 | 1 | 3 | 70.0 % | 33.3 % | 100.0 % of 1 | 66.7 % | 1 | 20 ms | 30 ms |"
            ),
            "{table}"
        );
        assert!(table.contains("| b |  | all 2 |"), "{table}");
        assert_eq!(
            totals(Feature::Summarise, &results).changed_rewrites_pct,
            None
        );
    }
}
