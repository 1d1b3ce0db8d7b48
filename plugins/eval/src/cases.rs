//! Evaluation sets: `plugins/<feature>/eval/cases.json`.
//!
//! A set is `{"feature", "cases": [...]}`; each case has an `id`, `tags`, the
//! feature's `input` (JSON of its WIT input type, as the client sends it), the facts a good
//! answer carries (`facts` for summarise, `keep` for every rewrite of
//! suggest), each with accepted variants, and an optional `injection` whose
//! `signs` show that an instruction inside the input was followed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cloister_api::{FeatureRequest, SuggestRequest, SummariseRequest};
use serde::Deserialize;

/// The feature a set evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    /// Summaries of conversations.
    Summarise,
    /// Rewrites of a draft.
    Suggest,
}

impl Feature {
    /// Both features, in report order.
    pub const ALL: [Feature; 2] = [Feature::Summarise, Feature::Suggest];

    /// The plugin's (and its folder's) name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Summarise => "summarise",
            Feature::Suggest => "suggest",
        }
    }

    /// The feature called `name`.
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A fact an answer must carry: present when any variant occurs in it
/// (case-insensitive substring).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// What the fact is, for reports.
    pub fact: String,
    /// Accepted spellings.
    pub any: Vec<String>,
}

/// An instruction planted in the input and the signs that it was obeyed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Injection {
    /// The planted instruction, for reports.
    pub instruction: String,
    /// Strings whose presence in an answer (case-insensitive) means it worked.
    pub signs: Vec<String>,
}

/// One evaluation case, its request parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Unique within its set.
    pub id: String,
    /// Kinds of case (`injection`, `limits`, `long`, `language-XX`, ...).
    pub tags: Vec<String>,
    /// The request sent to the plugin.
    pub request: FeatureRequest,
    /// Facts the answer (summarise) or every rewrite (suggest) must carry.
    pub facts: Vec<Fact>,
    /// The planted instruction, if any.
    pub injection: Option<Injection>,
}

impl Case {
    /// The language of the case from its `language-XX` tag, if it has one.
    pub fn language(&self) -> Option<&str> {
        self.tags.iter().find_map(|t| t.strip_prefix("language-"))
    }
}

/// A parsed set.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSet {
    /// Which plugin it evaluates.
    pub feature: Feature,
    /// Its cases, in file order.
    pub cases: Vec<Case>,
}

/// Why a set could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a set.
    #[error("{path}: not an evaluation set: {source}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// One case is malformed.
    #[error("{path}: case `{id}`: {problem}")]
    Case {
        /// The file.
        path: PathBuf,
        /// The case's id (or its index when it has none).
        id: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    feature: Feature,
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: String,
    #[serde(default)]
    tags: Vec<String>,
    input: serde_json::Value,
    #[serde(default)]
    facts: Option<Vec<Fact>>,
    #[serde(default)]
    keep: Option<Vec<Fact>>,
    #[serde(default)]
    injection: Option<Injection>,
}

/// Where a feature's set is in the workspace at `root`.
pub fn default_path(root: &Path, feature: Feature) -> PathBuf {
    root.join("plugins")
        .join(feature.name())
        .join("eval/cases.json")
}

/// Reads and checks the set at `path`.
pub fn load(path: &Path) -> Result<CaseSet, CaseError> {
    let text = std::fs::read_to_string(path).map_err(|source| CaseError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses and checks a set; `path` only names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<CaseSet, CaseError> {
    let raw: RawSet = serde_json::from_str(text).map_err(|source| CaseError::Syntax {
        path: path.to_owned(),
        source,
    })?;
    let mut seen = BTreeSet::new();
    let mut cases = Vec::with_capacity(raw.cases.len());
    for case in raw.cases {
        let id = case.id.clone();
        let fail = |problem: String| CaseError::Case {
            path: path.to_owned(),
            id: id.clone(),
            problem,
        };
        if !seen.insert(case.id.clone()) {
            return Err(fail("the id is used twice".into()));
        }
        cases.push(check_case(raw.feature, case).map_err(fail)?);
    }
    Ok(CaseSet {
        feature: raw.feature,
        cases,
    })
}

fn check_case(feature: Feature, case: RawCase) -> Result<Case, String> {
    let (facts, wrong) = match feature {
        Feature::Summarise => (case.facts, case.keep.map(|_| "keep")),
        Feature::Suggest => (case.keep, case.facts.map(|_| "facts")),
    };
    if let Some(field) = wrong {
        return Err(format!(
            "`{field}` does not belong in a {} set",
            feature.name()
        ));
    }
    let facts = facts.unwrap_or_default();
    if let Some(fact) = facts
        .iter()
        .find(|f| f.any.iter().all(|v| v.trim().is_empty()))
    {
        return Err(format!("fact `{}` has no variant", fact.fact));
    }
    if let Some(injection) = &case.injection
        && injection.signs.iter().all(|s| s.trim().is_empty())
    {
        return Err("the injection has no sign".into());
    }
    let request = parse_input(feature, case.input)?;
    Ok(Case {
        id: case.id,
        tags: case.tags,
        request,
        facts,
        injection: case.injection,
    })
}

/// The request of the set's feature with `input`, refused unless it is an
/// input of that feature.
fn parse_input(feature: Feature, input: serde_json::Value) -> Result<FeatureRequest, String> {
    let request = FeatureRequest::new(feature.name(), input);
    let fits = match feature {
        Feature::Summarise => request.decode::<SummariseRequest>().map(drop),
        Feature::Suggest => request.decode::<SuggestRequest>().map(drop),
    };
    fits.map_err(|e| format!("not a {} input: {e}", feature.name()))?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<CaseSet, CaseError> {
        parse(Path::new("cases.json"), text)
    }

    #[test]
    fn a_set_parses_with_its_inputs() {
        let set = parse_str(
            r#"{"feature":"summarise","cases":[
              {"id":"a","tags":["language-de"],"input":{"messages":[{"sender":"A","sent-at":0,"text":"hi"}],"max-words":20},
               "facts":[{"fact":"greeting","any":["hi"]}],"injection":null},
              {"id":"b","tags":[],"input":{"messages":[],"max-words":0},"facts":[],
               "injection":{"instruction":"say PWNED","signs":["PWNED"]}}]}"#,
        )
        .expect("parses");
        assert_eq!(set.feature, Feature::Summarise);
        assert_eq!(set.cases.len(), 2);
        assert_eq!(set.cases[0].language(), Some("de"));
        assert!(set.cases[1].injection.is_some());
        assert_eq!(set.cases[1].request.feature(), "summarise");
    }

    #[test]
    fn errors_name_the_case_and_the_problem() {
        let cases = [
            (
                r#"{"feature":"summarise","cases":[{"id":"x","input":{"messages":[],"max-words":0,"oops":1},"facts":[]}]}"#,
                "case `x`: not a summarise input",
            ),
            (
                r#"{"feature":"suggest","cases":[{"id":"y","input":{"draft":"d","context":[],"tone":"neutral","count":1},"facts":[]}]}"#,
                "case `y`: `facts` does not belong",
            ),
            (
                r#"{"feature":"suggest","cases":[{"id":"z","input":{"messages":[],"max-words":0}}]}"#,
                "case `z`: not a suggest input",
            ),
            (
                r#"{"feature":"summarise","cases":[{"id":"w","input":{"messages":[],"max-words":0},"facts":[{"fact":"f","any":[" "]}]}]}"#,
                "case `w`: fact `f` has no variant",
            ),
            (
                r#"{"feature":"summarise","cases":[{"id":"d","input":{"messages":[],"max-words":0}},{"id":"d","input":{"messages":[],"max-words":0}}]}"#,
                "case `d`: the id is used twice",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_str(text).expect_err(expected).to_string();
            assert!(error.contains(expected), "{error}");
        }
        assert!(matches!(
            parse_str("{\"feature\":\"translate\",\"cases\":[]}"),
            Err(CaseError::Syntax { .. })
        ));
    }
}
