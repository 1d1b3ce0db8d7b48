//! `images [PARTY...]`: an OCI image per party, built reproducibly with
//! Debian's `buildah` from `deploy/images/PARTY.Containerfile`.
//!
//! Nothing is pulled from an image registry: every image starts `FROM
//! scratch` and holds a root filesystem unpacked (`dpkg-deb -x`) from the
//! Debian packages pinned by version and SHA-256 in
//! `deploy/images/debian-packages.lock` (the C library and libgcc: what the
//! binaries link; no shell, no package manager), the files of
//! `deploy/images/etc`, the party's release binary from
//! [`reproducible::build`], and what the party loads from the image
//! (the host's plugins and policies, the inference host's model).
//!
//! The same commit gives the same image digest: file times and the image's
//! creation time are the commit's (`--timestamp`), there is no build
//! history and no buildah version label, files are owned by root with
//! normalised modes, and the binaries are reproducible. `--verify` builds
//! every image a second time from a freshly staged context and fails
//! unless the digests agree. `--check` shows each image without a
//! container runtime: it mounts the image, checks that it holds no shell,
//! and runs its entry point in the image's root (chroot) as the image's
//! non-root user, `--help`, and the relay serving on loopback.
//!
//! Each image is written as an OCI layout, `target/images/oci/PARTY`, with
//! its digest and size in `target/images/images.json`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::reproducible::{self, BuildRecord, binary_path};
use crate::{fetch_model, run, stdout_of};

/// What an image carries besides its binary and the root filesystem.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// The reviewed plugin components (`target/plugins`, as manifests name them).
    Plugins,
    /// `policies/`.
    Policies,
    /// The model (`target/models`).
    Model,
}

/// One party's image.
pub(crate) struct Image {
    pub party: &'static str,
    pub binary: &'static str,
    pub content: &'static [Content],
}

const IMAGES: &[Image] = &[
    Image {
        party: "relay",
        binary: "cloister-relay",
        content: &[],
    },
    Image {
        party: "gateway",
        binary: "cloister-gateway",
        content: &[],
    },
    Image {
        party: "issuer",
        binary: "cloister-issuer",
        content: &[],
    },
    Image {
        party: "ledger",
        binary: "cloister-ledger",
        content: &[],
    },
    Image {
        party: "witness",
        binary: "cloister-witness",
        content: &[],
    },
    Image {
        party: "host",
        binary: "cloister-host",
        content: &[Content::Plugins, Content::Policies],
    },
    Image {
        party: "inference",
        binary: "cloister-inference-host",
        content: &[Content::Policies, Content::Model],
    },
];

/// The image's user and group: unprivileged, as the manifests run it.
const UID: u32 = 65532;

/// The build files, relative to the workspace root.
const BUILD_FILES: &str = "deploy/images";
/// Outputs, relative to the workspace root.
const OUT: &str = "target/images";
/// Names a shell or a multi-call binary that would give one.
const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "busybox", "toybox"];

/// What `images` was asked for.
pub(crate) struct Options {
    /// Parties to build (all when empty).
    pub parties: Vec<String>,
    /// Build each image twice from fresh contexts and compare digests.
    pub verify: bool,
    /// Mount each image and run its entry point.
    pub check: bool,
    /// The folder of reviewed Python and JavaScript components, if they
    /// are pinned rather than rebuilt.
    pub reviewed: Option<PathBuf>,
}

/// One built image, as `images.json` lists it.
#[derive(Serialize, PartialEq, Eq)]
struct Built {
    /// `localhost/cloister/PARTY:COMMIT` in buildah's store.
    reference: String,
    /// The OCI manifest digest: what a pod pins.
    digest: String,
    /// Bytes of the layer as stored and transferred (gzip).
    compressed_bytes: u64,
    /// Bytes of the unpacked root filesystem's tar.
    uncompressed_bytes: u64,
}

/// `cargo xtask images`.
pub(crate) fn images(root: &Path, options: &Options) -> Result<()> {
    let selected = select(&options.parties)?;
    run(Command::new("bash")
        .arg(root.join("scripts/apt-install-missing.sh"))
        .args(["container image builds", "buildah"]))?;
    let started = Instant::now();
    let record = reproducible::build(root, false, options.reviewed.as_deref())?;
    if selected.iter().any(|i| i.content.contains(&Content::Model)) {
        fetch_model(root)?;
    }
    let out = root.join(OUT);
    let built = build_all(root, &out, &record, &selected)?;
    eprintln!(
        "xtask: {} images in {:.0?} (binaries included)",
        built.len(),
        started.elapsed()
    );
    if options.verify {
        let again = build_all(root, &out, &record, &selected)?;
        let differ: Vec<&str> = built
            .iter()
            .filter(|(party, image)| again.get(*party).map(|b| &b.digest) != Some(&image.digest))
            .map(|(party, _)| party.as_str())
            .collect();
        ensure!(
            differ.is_empty(),
            "a second build gave other digests for {differ:?}"
        );
        eprintln!("xtask: a second build from fresh contexts gave the same digests");
    }
    let json = serde_json::to_string_pretty(&built)? + "\n";
    fs::write(out.join("images.json"), json)?;
    for (party, image) in &built {
        println!(
            "{party:<10} {} {:>6.1} MB ({:.1} MB compressed)",
            image.digest,
            image.uncompressed_bytes as f64 / 1e6,
            image.compressed_bytes as f64 / 1e6
        );
    }
    if options.check {
        for image in &selected {
            check(image, &built[image.party].reference)?;
        }
    }
    Ok(())
}

fn select(parties: &[String]) -> Result<Vec<&'static Image>> {
    if parties.is_empty() {
        return Ok(IMAGES.iter().collect());
    }
    parties
        .iter()
        .map(|party| {
            IMAGES.iter().find(|i| i.party == party).with_context(|| {
                format!(
                    "no image `{party}`; choose from {:?}",
                    IMAGES.iter().map(|i| i.party).collect::<Vec<_>>()
                )
            })
        })
        .collect()
}

/// Stages a fresh context and builds every selected image from it.
fn build_all(
    root: &Path,
    out: &Path,
    record: &BuildRecord,
    selected: &[&Image],
) -> Result<BTreeMap<String, Built>> {
    let context = out.join("context");
    stage(root, out, &context, selected)?;
    let mut built = BTreeMap::new();
    for image in selected {
        let started = Instant::now();
        let image_built = build_one(root, out, &context, record, image)?;
        eprintln!(
            "xtask: image {} {} in {:.0?}",
            image.party,
            image_built.digest,
            started.elapsed()
        );
        built.insert(image.party.to_owned(), image_built);
    }
    fs::remove_dir_all(&context).context("deleting the build context")?;
    Ok(built)
}

/// The build context: `rootfs/` (Debian packages and `deploy/images/etc`),
/// `bin/`, and `plugins/`, `policies/`, `models/` as the images need them.
/// Every file is root's, readable by all, writable by none but root.
pub(crate) fn stage(root: &Path, out: &Path, context: &Path, selected: &[&Image]) -> Result<()> {
    if context.exists() {
        fs::remove_dir_all(context)?;
    }
    let rootfs = context.join("rootfs");
    fs::create_dir_all(&rootfs)?;
    let lock = root.join(BUILD_FILES).join("debian-packages.lock");
    for deb in debian_packages(&lock, &out.join("debs"))? {
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&rootfs))?;
    }
    // Documentation but for the licences, and lintian's notes, are not needed to run.
    for dir in ["usr/share/lintian", "usr/share/man", "usr/share/info"] {
        let path = rootfs.join(dir);
        if path.exists() {
            fs::remove_dir_all(path)?;
        }
    }
    prune_docs(&rootfs.join("usr/share/doc"))?;
    copy(&root.join(BUILD_FILES).join("etc"), &rootfs.join("etc"))?;
    // Mount points the manifests use: scratch space and state volumes.
    fs::create_dir_all(rootfs.join("tmp"))?;
    fs::create_dir_all(rootfs.join("var/lib/cloister"))?;
    fs::create_dir_all(rootfs.join("etc/cloister"))?;

    let bin = context.join("bin");
    fs::create_dir_all(&bin)?;
    for image in selected {
        fs::copy(binary_path(root, image.binary), bin.join(image.binary))?;
    }
    let needs = |content| selected.iter().any(|i| i.content.contains(&content));
    if needs(Content::Policies) {
        copy(&root.join("policies"), &context.join("policies"))?;
    }
    if needs(Content::Plugins) {
        let plugins = context.join("plugins");
        fs::create_dir_all(&plugins)?;
        for component in reviewed_components(root)? {
            fs::copy(
                root.join("target/plugins").join(&component),
                plugins.join(&component),
            )?;
        }
    }
    if needs(Content::Model) {
        copy(&root.join("target/models"), &context.join("models"))?;
    }
    normalise_modes(context)?;
    run(Command::new("chmod").arg("1777").arg(rootfs.join("tmp")))
}

/// Modes and owners alike on every machine, whatever the umask of the
/// checkout: root's, readable by all, writable by root alone.
pub(crate) fn normalise_modes(dir: &Path) -> Result<()> {
    run(Command::new("chmod")
        .args(["-R", "u+rwX,go+rX,go-w"])
        .arg(dir))?;
    run(Command::new("chown").args(["-R", "0:0"]).arg(dir))
}

/// Copies a folder's contents into `to` (created), preserving symbolic links.
fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    run(Command::new("cp")
        .args(["-R", "--no-dereference", "--preserve=mode,links"])
        .arg(from.join("."))
        .arg(to))
}

/// Deletes everything under `doc` but each package's `copyright`.
fn prune_docs(doc: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(doc) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_symlink() || !path.is_dir() {
            continue;
        }
        for file in fs::read_dir(&path)? {
            let file = file?.path();
            if file.file_name().is_some_and(|name| name != "copyright") {
                if file.is_dir() {
                    fs::remove_dir_all(file)?;
                } else {
                    fs::remove_file(file)?;
                }
            }
        }
    }
    Ok(())
}

/// The component files the reviewed manifests (`policies/plugins/*.toml`) name.
fn reviewed_components(root: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        component: String,
    }
    let mut components = Vec::new();
    for entry in fs::read_dir(root.join("policies/plugins"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let manifest: Manifest = toml::from_str(&fs::read_to_string(&path)?)
                .with_context(|| format!("parsing {}", path.display()))?;
            components.push(manifest.component);
        }
    }
    components.sort();
    Ok(components)
}

/// The `.deb` files of a lock (`deploy/images/*.lock`), downloaded into
/// `cache` when missing, each checked against its SHA-256. A line is `NAME
/// VERSION SHA256 [SUITE]`: without a suite, from this machine's package
/// index (`apt-get download NAME=VERSION`); with one, from that suite of
/// the same Debian archive, through an index of its own in `cache` (the
/// machine's sources stay as they are).
pub(crate) fn debian_packages(lock_path: &Path, cache: &Path) -> Result<Vec<PathBuf>> {
    let lock = fs::read_to_string(lock_path)
        .with_context(|| format!("reading {}", lock_path.display()))?;
    fs::create_dir_all(cache)?;
    let mut debs = Vec::new();
    for line in lock.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, version, sha256, suite) = match line.split_whitespace().collect::<Vec<_>>()[..] {
            [name, version, sha256] => (name, version, sha256, None),
            [name, version, sha256, suite] => (name, version, sha256, Some(suite)),
            _ => bail!(
                "{}: `{line}` is not `NAME VERSION SHA256 [SUITE]`",
                lock_path.display()
            ),
        };
        // apt-get's file name: NAME_VERSION_ARCH.deb, with `:` escaped.
        let prefix = format!("{name}_{}_", version.replace(':', "%3a"));
        let cached = || -> Result<Option<PathBuf>> {
            for entry in fs::read_dir(cache)? {
                let path = entry?.path();
                if path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
                {
                    return Ok(Some(path));
                }
            }
            Ok(None)
        };
        if cached()?.is_none() {
            let mut apt = Command::new("apt-get");
            apt.current_dir(cache);
            if let Some(suite) = suite {
                apt.args(suite_index(cache, suite)?);
            }
            run(apt.args(["download", "-q", &format!("{name}={version}")])).with_context(|| {
                format!(
                    "{name} {version} is not in the package index (`apt-get update`; \
                         if the archive moved on, update {})",
                    lock_path.display()
                )
            })?;
        }
        let deb = cached()?.context("apt-get download left no .deb")?;
        let actual = hex::encode(Sha256::digest(fs::read(&deb)?));
        ensure!(
            actual == sha256,
            "{} has SHA-256 {actual}, the lock says {sha256}",
            deb.display()
        );
        debs.push(deb);
    }
    Ok(debs)
}

/// apt options for a package index of `suite` alone, in `cache/apt-SUITE`,
/// from the archive this machine's Debian sources name (updated once).
fn suite_index(cache: &Path, suite: &str) -> Result<Vec<String>> {
    let dir = cache.join(format!("apt-{suite}"));
    let lists = dir.join("lists");
    let sources = dir.join("sources.list");
    let options = vec![
        format!("-oDir::Etc::SourceList={}", sources.display()),
        "-oDir::Etc::SourceParts=/dev/null".to_owned(),
        format!("-oDir::State::Lists={}", lists.display()),
        format!("-oDir::Cache={}", dir.join("cache").display()),
    ];
    if lists.exists() {
        return Ok(options);
    }
    fs::create_dir_all(lists.join("partial"))?;
    fs::create_dir_all(dir.join("cache/archives/partial"))?;
    let archive = debian_archive()?;
    fs::write(&sources, format!("deb {archive} {suite} main\n"))?;
    run(Command::new("apt-get")
        .args(&options)
        .args(["update", "-qq"]))?;
    Ok(options)
}

/// The URI of the Debian archive in this machine's apt sources.
fn debian_archive() -> Result<String> {
    let mut texts = Vec::new();
    for entry in fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
    {
        texts.push(fs::read_to_string(entry?.path()).unwrap_or_default());
    }
    texts.push(fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    texts
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| {
            let line = line.trim();
            line.strip_prefix("URIs:")
                .or_else(|| {
                    line.strip_prefix("deb ")
                        .and_then(|rest| rest.split_whitespace().next())
                })
                .map(str::trim)
        })
        .find(|uri| uri.trim_end_matches('/').ends_with("/debian"))
        .map(str::to_owned)
        .context("no Debian archive in /etc/apt/sources.list{,.d}")
}

/// Builds one image and writes it as an OCI layout; its digest and sizes.
fn build_one(
    root: &Path,
    out: &Path,
    context: &Path,
    record: &BuildRecord,
    image: &Image,
) -> Result<Built> {
    let short = record
        .source_commit
        .get(..12)
        .unwrap_or(&record.source_commit);
    let reference = format!("localhost/cloister/{}:{short}", image.party);
    let file = root
        .join(BUILD_FILES)
        .join(format!("{}.Containerfile", image.party));
    run(Command::new("buildah")
        .args(["build", "--quiet", "--no-cache", "--layers=false"])
        .args([
            "--format",
            "oci",
            "--omit-history",
            "--identity-label=false",
        ])
        .arg(format!("--timestamp={}", record.source_date_epoch))
        .arg(format!(
            "--label=org.opencontainers.image.revision={}",
            record.source_commit
        ))
        .arg("--file")
        .arg(&file)
        .args(["--tag", &reference])
        .arg(context)
        .stdout(Stdio::null()))?;
    let layout = out.join("oci").join(image.party);
    if layout.exists() {
        fs::remove_dir_all(&layout)?;
    }
    fs::create_dir_all(out.join("oci"))?;
    let digest_file = out.join(format!("{}.digest", image.party));
    run(Command::new("buildah")
        .args(["push", "--quiet", "--format", "oci", "--remove-signatures"])
        .arg("--digestfile")
        .arg(&digest_file)
        .arg(&reference)
        .arg(format!("oci:{}:{short}", layout.display())))?;
    let digest = fs::read_to_string(&digest_file)?.trim().to_owned();
    fs::remove_file(&digest_file)?;
    let (compressed_bytes, uncompressed_bytes) = layer_sizes(&layout, &digest)?;
    Ok(Built {
        reference,
        digest,
        compressed_bytes,
        uncompressed_bytes,
    })
}

/// The sizes of an image's layers in an OCI layout, compressed and not.
fn layer_sizes(layout: &Path, digest: &str) -> Result<(u64, u64)> {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(blob(digest))?)?;
    let mut compressed = 0;
    let mut uncompressed = 0;
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        compressed += layer["size"].as_u64().unwrap_or_default();
        let layer_digest = layer["digest"].as_str().context("layer without digest")?;
        uncompressed +=
            stdout_of(Command::new("gzip").arg("-dc").arg(blob(layer_digest)))?.len() as u64;
    }
    Ok((compressed, uncompressed))
}

/// Mounts an image and shows it works without a container runtime: no
/// shell anywhere, and its entry point runs in its own root as its user.
fn check(image: &Image, reference: &str) -> Result<()> {
    let container = String::from_utf8(stdout_of(Command::new("buildah").args([
        "from",
        "--pull=never",
        "--quiet",
        reference,
    ]))?)?
    .trim()
    .to_owned();
    let result = (|| {
        let mount = PathBuf::from(
            String::from_utf8(stdout_of(
                Command::new("buildah").args(["mount", &container]),
            )?)?
            .trim(),
        );
        let shells = find_named(&mount, SHELLS)?;
        ensure!(
            shells.is_empty(),
            "{}: holds a shell: {shells:?}",
            image.party
        );
        let entry = format!("/usr/local/bin/{}", image.binary);
        let help = stdout_of(in_image(&mount).args([&entry, "--help"]))?;
        let first = String::from_utf8_lossy(&help);
        eprintln!(
            "xtask: check {}: no shell; `{entry} --help` as uid {UID}: {}",
            image.party,
            first.lines().next().unwrap_or_default()
        );
        if image.party == "relay" {
            serve_relay(&mount, &entry)?;
        }
        Ok(())
    })();
    run(Command::new("buildah")
        .args(["rm", &container])
        .stdout(Stdio::null()))?;
    result
}

/// A command run in the image's root as its user, as a runtime would start it.
fn in_image(mount: &Path) -> Command {
    let mut command = Command::new("chroot");
    command
        .arg(format!("--userspec={UID}:{UID}"))
        .arg(mount)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    command
}

/// Files under `dir` with one of `names` (symbolic links included).
fn find_named(dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if entry
                .file_name()
                .to_str()
                .is_some_and(|n| names.contains(&n))
            {
                found.push(entry.path());
            }
        }
    }
    Ok(found)
}

/// Starts the relay from the image on a loopback port, its configuration in
/// the image's `/tmp` (the one writable mount), and probes it.
fn serve_relay(mount: &Path, entry: &str) -> Result<()> {
    let port = free_port()?;
    let config = format!("listen = \"127.0.0.1:{port}\"\n");
    fs::write(mount.join("tmp/relay.toml"), config)?;
    let child = in_image(mount)
        .args([entry, "--config", "/tmp/relay.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the relay from its image")?;
    let mut child = KillOnDrop(child);
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.0.try_wait()? {
            bail!("the relay from its image exited: {status}");
        }
        if let Ok(metrics) = http_get(&address, "/metrics") {
            let health = http_get(&address, "/healthz")?;
            ensure!(
                metrics.starts_with("HTTP/1.1 200"),
                "/metrics: {}",
                metrics.lines().next().unwrap_or_default()
            );
            // Not ready without a gateway to fetch keys from: it answers 503.
            eprintln!(
                "xtask: check relay: serving on {address}: /metrics 200, /healthz {}",
                health.lines().next().unwrap_or_default()
            );
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the relay never answered on {address}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Kills a started party when the check ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A plain HTTP/1.1 GET; the whole response.
fn http_get(address: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every image has its build file, which runs its binary as the
    /// unprivileged user, and its binary is one the reproducible build makes.
    #[test]
    fn every_image_has_a_build_file_running_its_binary_unprivileged() {
        let root = crate::workspace_root();
        for image in IMAGES {
            let file = root
                .join(BUILD_FILES)
                .join(format!("{}.Containerfile", image.party));
            let text = fs::read_to_string(&file).expect("build file");
            assert!(text.contains("FROM scratch\n"), "{}", file.display());
            assert!(
                text.contains(&format!("\nUSER {UID}:{UID}\n")),
                "{}",
                file.display()
            );
            assert!(
                text.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{}\"]", image.binary)),
                "{}",
                file.display()
            );
            assert!(
                reproducible::BINARIES
                    .iter()
                    .any(|(_, b)| *b == image.binary),
                "{}",
                image.binary
            );
        }
        assert!(select(&["nope".into()]).is_err());
        assert_eq!(select(&[]).expect("all").len(), IMAGES.len());
    }

    /// The shipped locks pin every package by version and SHA-256.
    #[test]
    fn the_package_locks_pin_versions_and_digests() {
        let root = crate::workspace_root();
        for lock in ["debian-packages.lock", "cvm/packages.lock"] {
            let text = fs::read_to_string(root.join(BUILD_FILES).join(lock)).expect("lock");
            let lines: Vec<Vec<&str>> = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| l.split_whitespace().collect())
                .collect();
            assert!(!lines.is_empty(), "{lock}");
            for fields in lines {
                assert!(matches!(fields.len(), 3 | 4), "{lock}: {fields:?}");
                assert_eq!(fields[2].len(), 64, "{lock}: {fields:?}");
                assert!(fields[2].bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
    }
}
