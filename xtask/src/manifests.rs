//! `validate-manifests`: every file of `deploy/kubernetes` checked by
//! `kubernetes-validate` (PyPI) against the OpenAPI schemas of one named
//! Kubernetes version, strictly (an unknown field is an error), and the
//! folder's `kustomization.yaml` checked to list exactly those files, so
//! `kubectl apply -k` applies what was validated. The parties' TOML files
//! the ConfigMaps carry must parse. Where `kubectl` is installed, the
//! kustomization is also rendered.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::{run, stdout_of};

/// The Kubernetes version the manifests are written for and checked against.
pub const KUBERNETES_VERSION: &str = "1.31.0";

/// The manifests, relative to the workspace root.
const MANIFESTS: &str = "deploy/kubernetes";

/// The kustomization file, which is not a Kubernetes object itself.
const KUSTOMIZATION: &str = "kustomization.yaml";

/// Installs the validator if needed, then checks every manifest.
pub fn validate(root: &Path) -> Result<()> {
    let dir = root.join(MANIFESTS);
    let files = manifest_files(&dir)?;
    let kustomization = std::fs::read_to_string(dir.join(KUSTOMIZATION))
        .with_context(|| format!("reading {MANIFESTS}/{KUSTOMIZATION}"))?;
    check_resources(&resources(&kustomization), &files)?;
    check_embedded_toml(&dir, &files)?;

    let tool = install_validator(root)?;
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| OsString::from("python3"));
    let output = Command::new(python)
        .current_dir(&dir)
        .env("PYTHONPATH", tool)
        .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
        .args(["--kubernetes-version", KUBERNETES_VERSION])
        .args(&files)
        .output()
        .context("starting python3 -m kubernetes_validate")?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprint!("{report}");
    // An object of a kind (or apiVersion) it has no schema for is only a
    // warning to kubernetes-validate: a misspelt kind would pass unchecked.
    if !output.status.success() || report.lines().any(|line| line.starts_with("WARN")) {
        bail!(
            "{MANIFESTS} does not validate against Kubernetes {KUBERNETES_VERSION} \
             (kubernetes-validate, above)"
        );
    }

    let kubectl = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if kubectl {
        run(Command::new("kubectl")
            .arg("kustomize")
            .arg(&dir)
            .stdout(Stdio::null()))
        .with_context(|| format!("kubectl kustomize {MANIFESTS}"))?;
    } else {
        eprintln!("kubectl not found: {MANIFESTS}/{KUSTOMIZATION} checked but not rendered");
    }
    eprintln!(
        "{} manifests valid for Kubernetes {KUBERNETES_VERSION}",
        files.len()
    );
    Ok(())
}

/// `scripts/install-kubernetes-validate.sh` (idempotent); the folder it
/// installed into.
fn install_validator(root: &Path) -> Result<PathBuf> {
    let output =
        stdout_of(Command::new("bash").arg(root.join("scripts/install-kubernetes-validate.sh")))
            .context("kubernetes-validate could not be installed")?;
    let dir = String::from_utf8(output).context("installer printed a non-UTF-8 path")?;
    Ok(PathBuf::from(dir.trim_end()))
}

/// Fails unless every TOML file a ConfigMap of `files` carries parses.
fn check_embedded_toml(dir: &Path, files: &[String]) -> Result<()> {
    for file in files {
        let yaml = std::fs::read_to_string(dir.join(file))
            .with_context(|| format!("reading {MANIFESTS}/{file}"))?;
        for (key, text) in embedded_toml(&yaml) {
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("{MANIFESTS}/{file}: {key} is not valid TOML"))?;
        }
    }
    Ok(())
}

/// The TOML files carried in `yaml`, by key: every block scalar
/// `  NAME.toml: |` of a ConfigMap's `data`, indented four spaces, as this
/// folder writes them.
fn embedded_toml(yaml: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(key) = line
            .strip_prefix("  ")
            .and_then(|rest| rest.strip_suffix(": |"))
            .filter(|key| key.ends_with(".toml") && !key.starts_with(' '))
        else {
            continue;
        };
        let mut text = String::new();
        while let Some(body) =
            lines.next_if(|next| next.trim().is_empty() || next.starts_with("    "))
        {
            text.push_str(body.get(4..).unwrap_or_default());
            text.push('\n');
        }
        found.push((key.to_owned(), text));
    }
    found
}

/// The YAML files of `dir` but the kustomization, sorted.
fn manifest_files(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else {
            bail!("{}: a file name that is not UTF-8", dir.display());
        };
        if (name.ends_with(".yaml") || name.ends_with(".yml")) && name != KUSTOMIZATION {
            files.push(name.to_owned());
        }
    }
    files.sort();
    Ok(files)
}

/// The entries of the top-level `resources:` list of a kustomization, in
/// the block style this folder uses (`  - file.yaml`, one per line).
fn resources(kustomization: &str) -> Vec<String> {
    kustomization
        .lines()
        .skip_while(|line| line.trim_end() != "resources:")
        .skip(1)
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map_while(|line| line.strip_prefix("- "))
        .map(|entry| entry.trim().to_owned())
        .collect()
}

/// Fails unless `listed` names every file of `files` and nothing else.
fn check_resources(listed: &[String], files: &[String]) -> Result<()> {
    let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    let files: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let unlisted: Vec<_> = files.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&files).collect();
    if !unlisted.is_empty() || !missing.is_empty() {
        bail!(
            "{MANIFESTS}/{KUSTOMIZATION} must list exactly the manifests of its folder: \
             not listed {unlisted:?}, listed but absent {missing:?}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn resources_are_read_up_to_the_next_key() {
        let kustomization = "# note\napiVersion: kustomize.config.k8s.io/v1beta1\n\
                             kind: Kustomization\nresources:\n  - a.yaml\n  # a comment\n\n  \
                             - b.yaml # why\nnamespace: x\n  - c.yaml\n";
        assert_eq!(resources(kustomization), strings(&["a.yaml", "b.yaml"]));
        assert!(resources("kind: Kustomization\n").is_empty());
    }

    #[test]
    fn the_kustomization_must_list_exactly_the_files() {
        let files = strings(&["a.yaml", "b.yaml"]);
        assert!(check_resources(&strings(&["b.yaml", "a.yaml"]), &files).is_ok());
        let error = check_resources(&strings(&["a.yaml", "c.yaml"]), &files)
            .expect_err("b unlisted, c absent")
            .to_string();
        assert!(
            error.contains("not listed [\"b.yaml\"]") && error.contains("absent [\"c.yaml\"]"),
            "{error}"
        );
    }

    #[test]
    fn toml_is_read_from_configmap_block_scalars_only() {
        let yaml = "data:\n  a.toml: |\n    x = 1\n\n    [t]\n    y = \"z\"\n  \
                    other.conf: |\n    not toml\n  b.toml: |\n    broken = \n---\nkind: X\n";
        let found = embedded_toml(yaml);
        assert_eq!(
            found,
            [
                ("a.toml".to_owned(), "x = 1\n\n[t]\ny = \"z\"\n".to_owned()),
                ("b.toml".to_owned(), "broken = \n".to_owned()),
            ]
        );
        assert!(toml::from_str::<toml::Table>(&found[1].1).is_err());
    }

    /// Every party's configuration in the shipped ConfigMaps parses.
    #[test]
    fn the_shipped_configmaps_carry_valid_toml() {
        let dir = crate::workspace_root().join(MANIFESTS);
        let files = manifest_files(&dir).expect("list");
        let carried: usize = files
            .iter()
            .map(|file| {
                embedded_toml(&std::fs::read_to_string(dir.join(file)).expect("read")).len()
            })
            .sum();
        assert_eq!(
            carried, 7,
            "relay, gateway, issuer, ledger, witness, host, inference"
        );
        check_embedded_toml(&dir, &files).expect("valid TOML");
    }

    /// The shipped kustomization and folder agree (the rest of the check
    /// needs the validator from PyPI: `cargo xtask validate-manifests`).
    #[test]
    fn the_shipped_kustomization_lists_every_manifest() {
        let dir = crate::workspace_root().join(MANIFESTS);
        let kustomization = std::fs::read_to_string(dir.join(KUSTOMIZATION)).expect("read");
        let files = manifest_files(&dir).expect("list");
        assert!(files.len() >= 10, "{files:?}");
        check_resources(&resources(&kustomization), &files).expect("consistent");
    }
}
