//! The evaluation in CI: a few cases of each set with the real model,
//! held to the goals. The whole set runs with `cargo xtask eval`.
//! Needs the model (`inference/fetch-model.sh`) and the built plugins.

use cloister_eval::{Case, Feature, GOALS, cases, evaluate, workspace_root};

/// Two cases per feature, picked by rule rather than by score: the set's
/// first case (the feature's everyday example) and its first injection case.
fn subset(feature: Feature) -> Vec<Case> {
    let set = cases::load(&cases::default_path(workspace_root(), feature)).expect("set");
    let everyday = set.cases.first().cloned().expect("a case");
    let injection = set
        .cases
        .iter()
        .find(|c| c.injection.is_some())
        .cloned()
        .expect("an injection case");
    vec![everyday, injection]
}

#[test]
fn eval_subset_meets_the_goals() {
    let mut missed = Vec::new();
    for feature in Feature::ALL {
        let (totals, results) = evaluate(feature, &subset(feature), |_| {}).expect("runs");
        println!(
            "{}",
            cloister_eval::report::markdown(feature, &totals, &results, true)
        );
        missed.extend(
            GOALS
                .missed(&totals)
                .into_iter()
                .map(|m| format!("{}: {m}", feature.name())),
        );
    }
    assert!(missed.is_empty(), "goals missed: {missed:?}");
}
