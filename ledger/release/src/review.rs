//! The reviewer's page of every plugin, and of the capability interfaces
//! they share (`cloister-release review`).
//!
//! A plugin's page puts in one place what a reviewer signs off: its WIT
//! world as built (the input and output types of its `run`, with their doc
//! comments, and what it imports), checked against the world its source
//! declares; its manifest's budgets and limits; the log events it may emit
//! with each field's bounds; the WASI interfaces it is allowed; its digest,
//! whether the component file matches it, and whether the transparency
//! ledger holds it in a release. Each fact is read from the file that
//! decides it (the component, `plugins/<name>/wit/world.wit`,
//! `policies/plugins/<name>.toml`, `policies/log-allowlist.toml`, the
//! ledger's verified view), never restated by hand. Without a ledger the
//! page says "not checked"; a ledger that cannot be synced is an error, never
//! a guess.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use cloister_host::PolicySet;
use cloister_host::digest::Digest;
use cloister_host::inspect::{ComponentFile, import_uses, read_component};
use cloister_host::logfilter::{AllowList, FieldRule};
use cloister_host::manifest::PluginManifest;
use cloister_ledger_verify::current::ReleaseStatus;
use cloister_ledger_verify::view::{LedgerSettings, LedgerTrust};
use cloister_tls::TlsSettings;
use cloister_wit::{WitWorld, package_markdown};
use serde::Deserialize;

use crate::ReleaseError;

/// The file of the capability interfaces' page in the output folder.
pub const CAPABILITIES_PAGE: &str = "capabilities.md";
/// The file listing every plugin's page.
pub const INDEX_PAGE: &str = "index.md";
/// The interface whose events the log allow-list filters.
const LOG_INTERFACE: &str = "cloister:feature/log@0.1.0";

/// Where the review reads from.
#[derive(Debug, Clone, Copy)]
pub struct ReviewInputs<'a> {
    /// The repository root: `policies/`, `wit/feature.wit` and each
    /// plugin's `plugins/<name>/wit/world.wit`.
    pub root: &'a Path,
    /// Where the built components are (`target/plugins`).
    pub plugin_dir: &'a Path,
    /// The ledger's verified view, synced; `None`: not checked.
    pub ledger: Option<&'a LedgerTrust>,
}

/// How a plugin's built world stands against its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitCheck {
    /// The component's world is the one `plugins/<name>/wit/world.wit` declares.
    Matches,
    /// They disagree, one sentence per difference.
    Differs(Vec<String>),
    /// The component or its source could not be read.
    Unreadable(String),
}

/// Whether the ledger holds the plugin's reviewed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerCheck {
    /// No ledger was given.
    NotChecked,
    /// No trusted release lists the plugin with its manifest's digest.
    NotInLedger,
    /// The releases listing it, each with where it stands now.
    Held(Vec<(String, ReleaseStatus)>),
}

/// One plugin's review.
#[derive(Debug, Clone)]
pub struct PluginReview {
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// The manifest's digest: the component that was reviewed.
    pub digest: Digest,
    /// The component file against that digest.
    pub file: ComponentFile,
    /// The built world against its source.
    pub wit: WitCheck,
    /// Whether the ledger holds it.
    pub ledger: LedgerCheck,
    /// The page, as Markdown.
    pub page: String,
}

/// Every plugin's review and the capability interfaces' page.
#[derive(Debug, Clone)]
pub struct Review {
    /// One per manifest, in manifest order.
    pub plugins: Vec<PluginReview>,
    /// Documentation of `wit/feature.wit`, as Markdown.
    pub capabilities: String,
}

/// A `--ledger-config` file: the ledger and its trust root, in the
/// `[ledger]` (and `[tls]`) form every party's configuration uses.
#[derive(Debug, Deserialize)]
struct LedgerConfigFile {
    ledger: LedgerSettings,
    #[serde(default)]
    tls: TlsSettings,
}

/// The ledger view a `--ledger-config` file names, synced once: relative
/// paths are taken from the file's folder, and the view's state folder is
/// created if missing. Call within a Tokio runtime.
///
/// # Errors
/// The file cannot be read or parsed, or the ledger cannot be synced
/// (nothing is then reported about the ledger).
pub async fn open_ledger(config: &Path) -> Result<LedgerTrust, ReleaseError> {
    let text = fs::read_to_string(config).map_err(|source| ReleaseError::Io {
        path: config.to_owned(),
        source,
    })?;
    let file: LedgerConfigFile =
        toml::from_str(&text).map_err(|source| ReleaseError::LedgerConfig {
            path: config.to_owned(),
            reason: source.to_string(),
        })?;
    let base = config.parent().unwrap_or(Path::new(""));
    let settings = file
        .ledger
        .trust_config(base, &file.tls)
        .map_err(|source| ReleaseError::LedgerConfig {
            path: config.to_owned(),
            reason: source.to_string(),
        })?;
    if let Some(dir) = settings.state_path.parent() {
        fs::create_dir_all(dir).map_err(|source| ReleaseError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let view = LedgerTrust::open(settings).map_err(ReleaseError::LedgerView)?;
    view.sync().await.map_err(ReleaseError::LedgerView)?;
    Ok(view)
}

/// Reviews every plugin of the policy set under `inputs.root`.
///
/// # Errors
/// The policies, a folder or `wit/feature.wit` cannot be read. A plugin's
/// own problems (a missing or mismatched component, a world that differs
/// from its source) are findings on its page, not errors.
pub fn review(inputs: &ReviewInputs<'_>) -> Result<Review, ReleaseError> {
    let open = |path: &Path| {
        Dir::open_ambient_dir(path, ambient_authority()).map_err(|source| ReleaseError::Io {
            path: path.to_owned(),
            source,
        })
    };
    let policies_path = inputs.root.join("policies");
    let policies =
        PolicySet::load(&open(&policies_path)?).map_err(|source| ReleaseError::Policies {
            path: policies_path,
            reason: source.to_string(),
        })?;
    let plugin_dir = open(inputs.plugin_dir)?;
    let shared = inputs.root.join("wit/feature.wit");
    let capabilities = package_markdown(&shared).map_err(|source| ReleaseError::Wit {
        path: shared.clone(),
        reason: source.to_string(),
    })?;
    let plugins = policies
        .manifests()
        .iter()
        .map(|manifest| review_plugin(inputs, &policies, &plugin_dir, manifest))
        .collect();
    Ok(Review {
        plugins,
        capabilities,
    })
}

fn review_plugin(
    inputs: &ReviewInputs<'_>,
    policies: &PolicySet,
    plugin_dir: &Dir,
    manifest: &PluginManifest,
) -> PluginReview {
    let (file, bytes) = read_component(manifest, plugin_dir);
    let source = format!("plugins/{}/wit/world.wit", manifest.name);
    let built = bytes
        .as_deref()
        .map(|bytes| WitWorld::from_component(bytes).map_err(|e| e.to_string()));
    let declared = WitWorld::from_source(
        &inputs.root.join("wit/feature.wit"),
        &inputs.root.join(&source),
    )
    .map_err(|e| e.to_string());
    let wit = match (&built, &declared) {
        (None, _) => WitCheck::Unreadable("no component to read".into()),
        (Some(Err(error)), _) | (_, Err(error)) => WitCheck::Unreadable(error.clone()),
        (Some(Ok(built)), Ok(declared)) => match built.differences(declared, &manifest.grants.wasi)
        {
            differences if differences.is_empty() => WitCheck::Matches,
            differences => WitCheck::Differs(differences),
        },
    };
    let ledger = match inputs.ledger {
        None => LedgerCheck::NotChecked,
        Some(view) => match view.plugin_releases(&manifest.name, manifest.digest.as_bytes()) {
            releases if releases.is_empty() => LedgerCheck::NotInLedger,
            releases => LedgerCheck::Held(releases),
        },
    };
    let mut review = PluginReview {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        digest: manifest.digest,
        file,
        wit,
        ledger,
        page: String::new(),
    };
    let built = built.and_then(Result::ok);
    review.page = page(
        &review,
        manifest,
        policies.allow_list(),
        Worlds {
            built: built.as_ref(),
            declared: declared.as_ref().ok(),
            source: &source,
        },
    );
    review
}

impl PluginReview {
    /// One line for the terminal: name, version, digest and every verdict.
    #[must_use]
    pub fn summary(&self) -> String {
        let file = match &self.file {
            ComponentFile::Matches => "component matches digest".to_owned(),
            ComponentFile::DigestMismatch { actual } => {
                format!("COMPONENT DIGEST MISMATCH (file is {actual})")
            }
            ComponentFile::Missing { .. } => "COMPONENT MISSING".to_owned(),
        };
        let wit = match &self.wit {
            WitCheck::Matches => "WIT matches source".to_owned(),
            WitCheck::Differs(differences) => {
                format!(
                    "WIT DIFFERS FROM SOURCE ({} differences)",
                    differences.len()
                )
            }
            WitCheck::Unreadable(_) => "WIT UNREADABLE".to_owned(),
        };
        format!(
            "{} {} {}: {file}; {wit}; {}",
            self.name,
            self.version,
            self.digest,
            ledger_verdict(&self.ledger)
        )
    }
}

impl Review {
    /// The index page: one summary line per plugin, each linking its page.
    #[must_use]
    pub fn index(&self) -> String {
        let mut out = String::from("# Plugins under review\n\n");
        for plugin in &self.plugins {
            let _ = writeln!(
                out,
                "- [`{}`]({}.md): {}",
                plugin.name,
                plugin.name,
                plugin.summary()
            );
        }
        let _ = writeln!(
            out,
            "\nThe capability interfaces every plugin may import: [{CAPABILITIES_PAGE}]({CAPABILITIES_PAGE}).",
        );
        out
    }

    /// Writes `<name>.md` per plugin, [`CAPABILITIES_PAGE`] and
    /// [`INDEX_PAGE`] into `out` (created if missing); returns their paths.
    ///
    /// # Errors
    /// A file cannot be written.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>, ReleaseError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ReleaseError::Io { path, source }
        };
        fs::create_dir_all(out).map_err(io(out))?;
        let pages = self
            .plugins
            .iter()
            .map(|plugin| (format!("{}.md", plugin.name), plugin.page.clone()))
            .chain([
                (CAPABILITIES_PAGE.to_owned(), self.capabilities.clone()),
                (INDEX_PAGE.to_owned(), self.index()),
            ]);
        let mut written = Vec::new();
        for (name, text) in pages {
            let path = out.join(name);
            fs::write(&path, text).map_err(io(&path))?;
            written.push(path);
        }
        Ok(written)
    }
}

fn ledger_verdict(ledger: &LedgerCheck) -> String {
    match ledger {
        LedgerCheck::NotChecked => "ledger not checked (no --ledger-config)".into(),
        LedgerCheck::NotInLedger => "NOT IN LEDGER".into(),
        LedgerCheck::Held(releases) => {
            let releases: Vec<String> = releases
                .iter()
                .map(|(name, status)| format!("{name} ({})", release_status(status)))
                .collect();
            format!("in ledger: {}", releases.join(", "))
        }
    }
}

fn release_status(status: &ReleaseStatus) -> String {
    match status {
        ReleaseStatus::Current => "current".into(),
        ReleaseStatus::NotYetPublished { published_at } => {
            format!("published at {published_at}, not yet")
        }
        ReleaseStatus::Superseded { by, since } => format!("superseded by #{by} since {since}"),
        ReleaseStatus::Revoked { reason } => format!("REVOKED: {reason}"),
    }
}

/// `n B`, with MiB or KiB when it is a whole number of them.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{n} B ({} MiB)", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{n} B ({} KiB)", n >> 10),
        n => format!("{n} B"),
    }
}

fn field_rule(rule: &FieldRule) -> String {
    let list = |items: Vec<String>| items.join(", ");
    match rule {
        FieldRule::Buckets(bounds) => format!(
            "a number, recorded as the lower bound of its bucket: {}",
            list(bounds.iter().map(u64::to_string).collect())
        ),
        FieldRule::Labels(labels) => format!(
            "one of {}",
            list(labels.iter().map(|l| format!("`{l}`")).collect())
        ),
        FieldRule::Flag => "true or false".into(),
        FieldRule::Any => "anything (host events only)".into(),
    }
}

/// A plugin's world as built and as its source declares it.
#[derive(Clone, Copy)]
struct Worlds<'a> {
    built: Option<&'a WitWorld>,
    declared: Option<&'a WitWorld>,
    /// The source's path in the repository.
    source: &'a str,
}

/// The page of one plugin.
fn page(
    review: &PluginReview,
    manifest: &PluginManifest,
    allow_list: &AllowList,
    worlds: Worlds<'_>,
) -> String {
    let Worlds {
        built,
        declared,
        source,
    } = worlds;
    let mut out = format!("# Plugin `{}` {}\n\n", review.name, review.version);
    let _ = writeln!(out, "{}\n", review.summary());

    out.push_str("## Component\n\n| | |\n|---|---|\n");
    let _ = writeln!(out, "| File | `{}` |", manifest.component);
    let _ = writeln!(out, "| Digest (manifest) | `{}` |", review.digest);
    let file = match &review.file {
        ComponentFile::Matches => "matches the manifest's digest".to_owned(),
        ComponentFile::DigestMismatch { actual } => {
            format!("**DIGEST MISMATCH**: the file hashes to `{actual}`; the host refuses it")
        }
        ComponentFile::Missing { reason } => format!("**MISSING**: {reason}"),
    };
    let _ = writeln!(out, "| File check | {file} |");
    let ledger = match &review.ledger {
        LedgerCheck::NotChecked => "not checked: no ledger was given (`--ledger-config`)".into(),
        LedgerCheck::NotInLedger => {
            "**NOT IN LEDGER**: no release of the ledger's verified view lists this plugin with this digest".into()
        }
        held => ledger_verdict(held),
    };
    let _ = writeln!(out, "| Ledger | {ledger} |");
    if let Some(world) = declared {
        let _ = writeln!(out, "| WIT world | `{}` (`{source}`) |", world.name());
    }
    let wit = match &review.wit {
        WitCheck::Matches => format!("the component's world is the one `{source}` declares"),
        WitCheck::Differs(differences) => {
            format!("**DIFFERS** from `{}`: {}", source, differences.join("; "))
        }
        WitCheck::Unreadable(reason) => format!("**UNREADABLE**: {reason}"),
    };
    let _ = writeln!(out, "| WIT check | {wit} |\n");

    if let Some(world) = built {
        out.push_str("## Input and output\n\n");
        out.push_str(
            "The host converts the client's JSON to the input type of `run` and checks it \
             against it before any plugin code runs; the output type is what the client receives.\n\n",
        );
        // A component keeps no doc comments: they come from its source
        // when the two agree.
        match (&review.wit, declared) {
            (WitCheck::Matches, Some(declared)) => out.push_str(&declared.markdown(3)),
            _ => {
                let _ = writeln!(
                    out,
                    "As built (the source differs, so its doc comments are not shown):\n"
                );
                out.push_str(&world.markdown(3));
            }
        }
        out.push_str(
            "## Imports\n\n| interface | functions it calls | manifest |\n|---|---|---|\n",
        );
        let functions = world.imported_functions();
        for import in import_uses(manifest, world.imports()) {
            let called = functions
                .get(&import.name)
                .map(|names| {
                    names
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let verdict = if import.allowed {
                "allowed"
            } else {
                "**NOT GRANTED**: the host refuses the component"
            };
            let _ = writeln!(out, "| `{}` | {called} | {verdict} |", import.name);
        }
        let _ = writeln!(out, "\nExports: {}.\n", world.exports().join(", "));
    }

    out.push_str("## Budgets and limits\n\nOne request, in one fresh instance:\n\n| limit | value |\n|---|---|\n");
    let limits = &manifest.limits;
    let _ = writeln!(out, "| linear memory | {} |", bytes(limits.memory_bytes));
    let _ = writeln!(out, "| table elements | {} |", limits.table_elements);
    let _ = writeln!(out, "| wall time | {} ms |", limits.time_ms);
    let _ = writeln!(
        out,
        "| response size (as the client receives it) | {} |\n",
        bytes(limits.max_output_bytes)
    );
    match &manifest.grants.inference {
        Some(grant) => {
            out.push_str("Inference (`[inference]`):\n\n| budget | value |\n|---|---|\n");
            let models: Vec<String> = grant.models.iter().map(|m| format!("`{m}`")).collect();
            let _ = writeln!(out, "| models | {} |", models.join(", "));
            let _ = writeln!(out, "| tokens per call | {} |", grant.max_tokens_per_call);
            let _ = writeln!(
                out,
                "| tokens per request | {} |",
                grant.max_tokens_per_request
            );
            let _ = writeln!(
                out,
                "| calls per request | {} |",
                grant.max_calls_per_request
            );
            let _ = writeln!(
                out,
                "| prompt per call | {} |\n",
                bytes(grant.max_prompt_bytes)
            );
        }
        None => out.push_str("Inference: none; it cannot call the model.\n\n"),
    }

    out.push_str("## Log events\n\n");
    if manifest.grants(LOG_INTERFACE) {
        let _ = writeln!(
            out,
            "It may emit these events (`policies/log-allowlist.toml`), at most {} per request; \
             each is recorded at the level shown, with only the fields shown, each reduced to \
             what it may hold. Anything else is dropped and counted. One request's log lines \
             carry at most {:.1} bits, whatever the plugin does.\n",
            allow_list.limits().plugin_events_per_request,
            allow_list.bits_per_request()
        );
        out.push_str("| event | level | fields |\n|---|---|---|\n");
        for (event, rule) in allow_list.plugin_events() {
            let fields: Vec<String> = rule
                .fields
                .iter()
                .map(|(name, rule)| format!("`{name}`: {}", field_rule(rule)))
                .collect();
            let fields = if fields.is_empty() {
                "none".to_owned()
            } else {
                fields.join("; ")
            };
            let _ = writeln!(
                out,
                "| `{event}` | {} | {fields} |",
                format!("{:?}", rule.level).to_lowercase()
            );
        }
        out.push('\n');
    } else {
        let _ = writeln!(
            out,
            "None: the manifest does not grant `{LOG_INTERFACE}`.\n"
        );
    }

    out.push_str("## WASI\n\n");
    let wasi = &manifest.grants.wasi;
    if wasi.is_empty() {
        out.push_str("None: the component may import no `wasi:*` interface.\n\n");
    } else {
        out.push_str(
            "Tolerated, exactly these, served by an empty context (no files, sockets, \
             environment or arguments; frozen clocks; output discarded):\n\n",
        );
        for interface in wasi {
            let _ = writeln!(out, "- `{interface}`");
        }
        out.push('\n');
    }

    if let Some(wit) = built.and_then(|world| world.wit().ok()) {
        out.push_str("## WIT, as decoded from the component\n\n```wit\n");
        out.push_str(&wit);
        out.push_str("```\n");
    }
    out
}
