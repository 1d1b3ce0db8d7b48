//! `cvm-image`: the feature host's SEV-SNP guest, built reproducibly from
//! Debian packages and this tree, and the launch measurement it must report.
//!
//! The guest boots by measured direct boot: QEMU is given the firmware
//! (`OVMF.amdsev.fd` of Debian's `ovmf-amdsev`), the kernel (`vmlinuz` of
//! Debian's `linux-image-*-amd64`), the initrd made here and the command
//! line (`deploy/images/cvm/cmdline`); the firmware's measurement covers
//! their hashes. The initrd is an uncompressed `newc` cpio archive, written
//! here entry by entry in sorted order with the commit's time, root as
//! owner and normalised modes: the same tree gives the same bytes. It holds
//! the root filesystem of the container images (C library, no shell, no
//! ssh), the guest's first process `cloister-init` (host/guest-init) and its
//! settings (`deploy/images/cvm/init.toml`), the reproducible
//! `cloister-host`, its configuration (`deploy/images/cvm/cloister-host.toml`),
//! the reviewed plugins and policies, the model, and the kernel modules
//! `init.toml` names.
//!
//! `sev-snp-measure` (PyPI) computes the measurement for the vCPU count and
//! type asked for; `target/cvm/launch.json` records it with the guest policy
//! and the digest of every input, and `cloister-release submit --cvm-launch
//! target/cvm/launch.json` logs it. `--verify` builds and measures twice.
//!
//! `cvm-boot` boots a copy of that guest under QEMU (TCG: no KVM and no
//! SEV-SNP on the project's machines) whose host settings differ in one
//! respect, SIMULATED attestation (and, unless asked for the model, the
//! deterministic engine), and serves requests through the whole chain to it.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use cloister_tls::TlsSettings;

use crate::demo::{self, Chain, ChainOptions, HostSetup};
use crate::images::{self, Content, Image};
use crate::{fetch_model, reproducible, run, stdout_of};

/// The recipe's files, relative to the workspace root.
const RECIPE: &str = "deploy/images/cvm";
/// Outputs, relative to the workspace root.
const OUT: &str = "target/cvm";
/// The boot check's guest and chain, relative to the workspace root.
const BOOT_OUT: &str = "target/cvm-boot";
/// The guest's session endpoint (`[serve] listen` of its host settings).
const GUEST_PORT: u16 = 7500;
/// The guest's host: its binary, plugins, policies and model.
const CVM_HOST: Image = Image {
    party: "cvm",
    binary: "cloister-host",
    content: &[Content::Plugins, Content::Policies, Content::Model],
};
/// Where the guest's first process is, as the command line names it.
const INIT: &str = "usr/local/sbin/cloister-init";
/// The host's settings in the guest, as `init.toml` names them.
const HOST_SETTINGS: &str = "etc/cloister/cloister-host.toml";
/// The one device node the kernel needs in the initrd before any
/// filesystem is mounted: the console the first process writes to.
const CONSOLE: Node = Node {
    name: "dev/console",
    mode: 0o020_600,
    rdev: (5, 1),
};
/// The SNP guest policy the guest is launched with: SMT allowed and the
/// reserved bit 17 set; no debugging, no migration agent (clients refuse both).
const SNP_POLICY: u64 = 0x3_0000;

/// What `cvm-image` was asked for.
pub(crate) struct Options {
    /// vCPUs of the guest (each one's initial state is measured).
    pub vcpus: u32,
    /// `sev-snp-measure`'s vCPU type, e.g. `EPYC-v4` (Milan), `EPYC-Genoa`.
    pub vcpu_type: String,
    /// Build and measure twice; fail unless both agree.
    pub verify: bool,
    /// The folder of reviewed Python and JavaScript components, if they
    /// are pinned rather than rebuilt.
    pub reviewed: Option<PathBuf>,
}

/// `target/cvm/launch.json`: the expected launch and what it was computed from.
#[derive(Serialize, PartialEq, Eq)]
struct Launch {
    /// The expected `MEASUREMENT` of the guest's attestation reports (hex).
    measurement: String,
    /// The SNP guest policy to launch with (`-object sev-snp-guest,policy=`).
    snp_policy: u64,
    vcpus: u32,
    vcpu_type: String,
    /// The kernel command line (`-append`).
    cmdline: String,
    /// SHA-256 of each input: `OVMF.amdsev.fd`, `vmlinuz`, `initrd.cpio`.
    ovmf_sha256: String,
    kernel_sha256: String,
    initrd_sha256: String,
    /// The commit the host, plugins and initrd were built from.
    source_commit: String,
}

/// `cargo xtask cvm-image`.
pub(crate) fn cvm_image(root: &Path, options: &Options) -> Result<()> {
    let record = reproducible::build(root, false, options.reviewed.as_deref())?;
    fetch_model(root)?;
    let out = root.join(OUT);
    let launch = build_and_measure(root, &out, &record, options)?;
    if options.verify {
        let again = build_and_measure(root, &out, &record, options)?;
        ensure!(
            again == launch,
            "a second build gave another initrd or measurement"
        );
        eprintln!("xtask: a second build gave the same initrd and measurement");
    }
    fs::write(
        out.join("launch.json"),
        serde_json::to_string_pretty(&launch)? + "\n",
    )?;
    println!("measurement {}", launch.measurement);
    println!("snp_policy  {:#x}", launch.snp_policy);
    println!("initrd      sha256:{}", launch.initrd_sha256);
    println!("written     {OUT}/{{OVMF.amdsev.fd,vmlinuz,initrd.cpio,launch.json}}");
    Ok(())
}

/// What `cvm-boot` was asked for.
pub(crate) struct BootOptions {
    /// Serve with the image's candle engine and model, not the
    /// deterministic one (slow under TCG: minutes per answer).
    pub model: bool,
    /// How long the guest may take to boot and serve.
    pub patience: Duration,
}

/// `cargo xtask cvm-boot`: the guest under QEMU behind the whole chain.
pub(crate) fn cvm_boot(root: &Path, options: &BootOptions) -> Result<()> {
    run(Command::new("bash")
        .arg(root.join("scripts/apt-install-missing.sh"))
        .args(["the guest's boot check", "qemu-system-x86"]))?;
    let record = reproducible::build(root, false, None)?;
    fetch_model(root)?;
    let out = root.join(BOOT_OUT);
    let settings = boot_check_settings(
        &fs::read_to_string(root.join(RECIPE).join("cloister-host.toml"))?,
        options.model,
    )?;
    let guest = stage(root, &out.join("guest"), &settings)?;
    let measured = measure_host(root, &guest.root, &settings, &out)?;
    let initrd = guest.archive(record.source_date_epoch)?;
    println!(
        "== boot check: guest {} (sha256:{}), host settings: SIMULATED attestation{}",
        initrd.display(),
        sha256_file(&initrd)?,
        if options.model {
            ""
        } else {
            ", deterministic engine"
        }
    );

    let start = qemu(
        guest.kernel.clone(),
        initrd,
        command_line(root)?,
        options.patience,
    );
    let started = Instant::now();
    let chain = Chain::start(
        root,
        ChainOptions {
            dir: out.join("chain"),
            bin: root.join("target/release"),
            host: HostSetup::Guest {
                start: Box::new(start),
                measured,
            },
            issuer: String::new(),
        },
    )?;
    println!(
        "== the guest serves after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    run(&mut chain.cloister(root, &["tokens", "fetch", "--count", "10"]))?;
    for request in boot_check_requests(root, &out, options.model)? {
        let args: Vec<&str> = request.iter().map(String::as_str).collect();
        println!("== phases 2-6 to the guest: `cloister {}`", args.join(" "));
        let asked = Instant::now();
        run(&mut chain.cloister(root, &args))?;
        println!("   answered in {:.1} s", asked.elapsed().as_secs_f64());
    }
    println!(
        "== done; the guest's console is {}",
        chain.log("host").display()
    );
    Ok(())
}

/// The launch digests the guest's host will report (`cloister-host
/// measure` of the very binary, plugins, policies and model in the staged
/// tree, before it is archived), written to `out/host-measure.json`.
fn measure_host(root: &Path, guest_root: &Path, settings: &str, out: &Path) -> Result<PathBuf> {
    let here = out.join("measure-here.toml");
    fs::write(
        &here,
        settings.replace(
            "\"/opt/cloister/",
            &format!("\"{}/opt/cloister/", guest_root.display()),
        ),
    )?;
    let digests = stdout_of(
        Command::new(reproducible::binary_path(root, "cloister-host"))
            .arg("--config")
            .arg(&here)
            .arg("measure"),
    )?;
    let measured = out.join("host-measure.json");
    fs::write(&measured, digests)?;
    Ok(measured)
}

/// How the boot check launches the guest, given the outer hop's
/// certificate and key: what an operator passes besides the image.
fn qemu(
    kernel: PathBuf,
    initrd: PathBuf,
    cmdline: String,
    patience: Duration,
) -> impl FnOnce(&TlsSettings) -> demo::Launch {
    move |tls: &TlsSettings| {
        let fw_cfg = |name: &str, file: &Option<PathBuf>| {
            let file = file.as_deref().unwrap_or(Path::new(""));
            format!("name=opt/cloister/tls/{name},file={}", file.display())
        };
        demo::Launch::new("qemu-system-x86_64".into(), demo::HOST)
            .args(["-machine", "q35", "-accel", "tcg,thread=multi"])
            .args(["-cpu", "max", "-smp", "2", "-m", "4096"])
            .args(["-nodefaults", "-display", "none"])
            // QEMU's own firmware (SeaBIOS), not `OVMF.amdsev.fd`: that one
            // boots a kernel only with the hashes QEMU puts in its measured
            // table, which it does for an SEV-SNP guest alone, and refuses
            // otherwise. From the kernel on, the guest is the image's.
            .args(["-serial", "stdio", "-no-reboot"])
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd)
            .arg("-append")
            .arg(&cmdline)
            .arg("-fw_cfg")
            .arg(fw_cfg("cert.pem", &tls.cert))
            .arg("-fw_cfg")
            .arg(fw_cfg("key.pem", &tls.key))
            // The guest reaches nothing; only its session endpoint is forwarded.
            .arg("-netdev")
            .arg(format!(
                "user,id=net0,restrict=on,hostfwd=tcp:{}-:{GUEST_PORT}",
                demo::HOST
            ))
            .args(["-device", "virtio-net-pci,netdev=net0,romfile="])
            .patience(patience)
    }
}

/// What the boot check asks the guest: with the model, the demo's
/// summarise and suggest; with the deterministic engine, whose answers are
/// the prompt replayed, summarise (Rust) and key-points (Python), which
/// make sense of that (suggest and tone-check refuse it as unusable).
fn boot_check_requests(root: &Path, out: &Path, model: bool) -> Result<Vec<Vec<String>>> {
    let conversation = root.join(demo::REQUESTS[0].1);
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    if model {
        return Ok(demo::REQUESTS
            .iter()
            .map(|(feature, input)| owned(&[feature, input]))
            .collect());
    }
    let lunch: serde_json::Value = serde_json::from_slice(&fs::read(&conversation)?)
        .with_context(|| format!("{} is not JSON", conversation.display()))?;
    let points = out.join("key-points-input.json");
    fs::write(
        &points,
        serde_json::json!({ "messages": lunch["input"]["messages"], "max-points": 3 }).to_string(),
    )?;
    let points = points.display().to_string();
    Ok(vec![
        owned(&[demo::REQUESTS[0].0, demo::REQUESTS[0].1]),
        owned(&["run", "key-points", "--input", &points]),
    ])
}

/// The image's host settings with SIMULATED attestation (there is no
/// SEV-SNP here) and, unless `model`, the deterministic engine.
fn boot_check_settings(shipped: &str, model: bool) -> Result<String> {
    let swap = |text: &str, from: &str, to: &str| -> Result<String> {
        ensure!(
            text.matches(from).count() == 1,
            "deploy/images/cvm/cloister-host.toml no longer has exactly one `{from}`"
        );
        Ok(text.replace(from, to))
    };
    let mut settings = swap(
        shipped,
        "provider = \"sev-guest\"",
        "provider = \"simulated\"",
    )?;
    if !model {
        settings = swap(
            &settings,
            "backend = \"candle\"",
            "backend = \"deterministic\"",
        )?;
    }
    Ok(format!(
        "# BOOT CHECK ONLY (`cargo xtask cvm-boot`): SIMULATED attestation; not a release's settings.\n{settings}"
    ))
}

fn build_and_measure(
    root: &Path,
    out: &Path,
    record: &reproducible::BuildRecord,
    options: &Options,
) -> Result<Launch> {
    let settings = fs::read_to_string(root.join(RECIPE).join("cloister-host.toml"))?;
    let guest = stage(root, out, &settings)?;
    let initrd = guest.archive(record.source_date_epoch)?;
    let cmdline = command_line(root)?;
    let measurement = measure(root, &guest.ovmf, &guest.kernel, &initrd, &cmdline, options)?;
    Ok(Launch {
        measurement,
        snp_policy: SNP_POLICY,
        vcpus: options.vcpus,
        vcpu_type: options.vcpu_type.clone(),
        cmdline,
        ovmf_sha256: sha256_file(&guest.ovmf)?,
        kernel_sha256: sha256_file(&guest.kernel)?,
        initrd_sha256: sha256_file(&initrd)?,
        source_commit: record.source_commit.clone(),
    })
}

/// The kernel command line of `deploy/images/cvm/cmdline`.
fn command_line(root: &Path) -> Result<String> {
    Ok(fs::read_to_string(root.join(RECIPE).join("cmdline"))?
        .trim()
        .to_owned())
}

/// A guest staged in `out`: its root tree, and the firmware and kernel
/// taken from the packages.
struct Guest {
    out: PathBuf,
    /// The tree the initrd is made of.
    root: PathBuf,
    ovmf: PathBuf,
    kernel: PathBuf,
}

/// `modules` of `init.toml`: the files to copy from the kernel package.
#[derive(serde::Deserialize)]
struct InitModules {
    modules: Vec<PathBuf>,
}

/// Stages the guest in `out` (cleared first) with `settings` as the host's
/// configuration.
fn stage(root: &Path, out: &Path, settings: &str) -> Result<Guest> {
    let recipe = root.join(RECIPE);
    if out.exists() {
        fs::remove_dir_all(out)?;
    }
    let packages = out.join("packages");
    fs::create_dir_all(&packages)?;
    let debs = images::debian_packages(
        &recipe.join("packages.lock"),
        &root.join("target/images/debs"),
    )?;
    for deb in &debs {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&packages))?;
    }
    let ovmf = out.join("OVMF.amdsev.fd");
    fs::copy(packages.join("usr/share/ovmf/OVMF.amdsev.fd"), &ovmf)
        .context("the ovmf-amdsev package has no OVMF.amdsev.fd")?;
    let kernel_version = only_entry(&packages.join("lib/modules"))?;
    let kernel = out.join("vmlinuz");
    fs::copy(
        packages.join(format!("boot/vmlinuz-{kernel_version}")),
        &kernel,
    )?;

    // The guest's root: the images' root filesystem and the host's files.
    let context = out.join("context");
    images::stage(root, &root.join("target/images"), &context, &[&CVM_HOST])?;
    let guest = context.join("rootfs");
    let place = |from: &Path, to: &str| -> Result<()> {
        let to = guest.join(to);
        fs::create_dir_all(to.parent().context("a path in the guest")?)?;
        fs::rename(from, &to)
            .with_context(|| format!("moving {} to {}", from.display(), to.display()))
    };
    place(
        &context.join("bin/cloister-host"),
        "usr/local/bin/cloister-host",
    )?;
    place(&context.join("plugins"), "opt/cloister/plugins")?;
    place(&context.join("policies"), "opt/cloister/policies")?;
    place(&context.join("models"), "opt/cloister/models")?;
    fs::create_dir_all(guest.join("usr/local/sbin"))?;
    fs::copy(
        reproducible::binary_path(root, "cloister-init"),
        guest.join(INIT),
    )?;
    fs::write(guest.join(HOST_SETTINGS), settings)?;
    let init = fs::read_to_string(recipe.join("init.toml"))?;
    fs::write(guest.join("etc/cloister/init.toml"), &init)?;
    // The first process's mount points.
    for dir in ["dev", "proc", "sys"] {
        fs::create_dir_all(guest.join(dir))?;
    }
    let InitModules { modules } = toml::from_str(&init).context("deploy/images/cvm/init.toml")?;
    for module in modules {
        let relative = format!("lib/modules/{kernel_version}/kernel/{}", module.display());
        let to = guest.join(&relative);
        fs::create_dir_all(to.parent().context("a module path")?)?;
        fs::copy(packages.join(&relative), &to)
            .with_context(|| format!("the kernel package has no {relative}"))?;
    }
    fs::remove_dir_all(&packages)?;
    Ok(Guest {
        out: out.to_owned(),
        root: guest,
        ovmf,
        kernel,
    })
}

impl Guest {
    /// Writes the tree as `initrd.cpio` dated `epoch`, then deletes the tree.
    fn archive(&self, epoch: u64) -> Result<PathBuf> {
        images::normalise_modes(&self.root)?;
        run(Command::new("chmod").arg("1777").arg(self.root.join("tmp")))?;
        let initrd = self.out.join("initrd.cpio");
        write_cpio(&self.root, &initrd, epoch, &[CONSOLE])?;
        fs::remove_dir_all(self.out.join("context"))?;
        Ok(initrd)
    }
}

/// The single entry of a folder (the kernel package's one module version).
fn only_entry(dir: &Path) -> Result<String> {
    let names: Vec<String> = fs::read_dir(dir)?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    match &names[..] {
        [name] => Ok(name.clone()),
        _ => anyhow::bail!("{} holds {names:?}, not one kernel", dir.display()),
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    Ok(hex::encode(Sha256::digest(fs::read(path)?)))
}

/// `sev-snp-measure --mode snp` of the guest, installed from PyPI when missing.
fn measure(
    root: &Path,
    ovmf: &Path,
    kernel: &Path,
    initrd: &Path,
    cmdline: &str,
    options: &Options,
) -> Result<String> {
    let tool = stdout_of(Command::new("bash").arg(root.join("scripts/install-sev-snp-measure.sh")))
        .context("sev-snp-measure could not be installed")?;
    let tool = PathBuf::from(String::from_utf8(tool)?.trim_end());
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let out = stdout_of(
        Command::new(python)
            .env("PYTHONPATH", tool)
            .args(["-m", "sevsnpmeasure.cli", "--mode", "snp"])
            .arg(format!("--vcpus={}", options.vcpus))
            .arg(format!("--vcpu-type={}", options.vcpu_type))
            .arg("--ovmf")
            .arg(ovmf)
            .arg("--kernel")
            .arg(kernel)
            .arg("--initrd")
            .arg(initrd)
            .arg("--append")
            .arg(cmdline)
            .args(["--output-format", "hex"]),
    )?;
    let measurement = String::from_utf8(out)?.trim().to_owned();
    ensure!(
        measurement.len() == 96 && measurement.bytes().all(|b| b.is_ascii_hexdigit()),
        "sev-snp-measure printed {measurement:?}, not a 48-byte measurement"
    );
    Ok(measurement)
}

/// A device node written into an archive without existing on disk.
struct Node {
    name: &'static str,
    /// File type and permissions, e.g. `0o020_600` for a character device.
    mode: u32,
    /// Major and minor number.
    rdev: (u32, u32),
}

/// Writes `dir`'s tree and `nodes` as a `newc` cpio archive: entries sorted
/// by path, owned by root, dated `mtime`, numbered in order, so equal trees
/// give equal archives.
fn write_cpio(dir: &Path, archive: &Path, mtime: u64, nodes: &[Node]) -> Result<()> {
    let mut paths = Vec::new();
    collect(dir, dir, &mut paths)?;
    paths.extend(nodes.iter().map(|node| PathBuf::from(node.name)));
    paths.sort();
    let mut out = std::io::BufWriter::new(fs::File::create(archive)?);
    for (ino, relative) in paths.iter().enumerate() {
        let ino = ino as u64 + 1;
        let name = relative.as_os_str().as_encoded_bytes();
        if let Some(node) = nodes.iter().find(|node| relative == Path::new(node.name)) {
            let header = Header {
                ino,
                mode: node.mode,
                nlink: 1,
                mtime,
                rdev: node.rdev,
            };
            cpio_entry(&mut out, &header, name, &[])?;
            continue;
        }
        let path = dir.join(relative);
        let meta = fs::symlink_metadata(&path)?;
        let data = if meta.file_type().is_symlink() {
            fs::read_link(&path)?.into_os_string().into_encoded_bytes()
        } else if meta.is_file() {
            fs::read(&path)?
        } else {
            Vec::new()
        };
        let header = Header {
            ino,
            mode: meta.permissions().mode() & 0o177_777,
            nlink: if meta.is_dir() { 2 } else { 1 },
            mtime,
            rdev: (0, 0),
        };
        cpio_entry(&mut out, &header, name, &data)?;
    }
    let trailer = Header {
        ino: 0,
        mode: 0,
        nlink: 1,
        mtime: 0,
        rdev: (0, 0),
    };
    cpio_entry(&mut out, &trailer, b"TRAILER!!!", &[])?;
    out.flush()?;
    Ok(())
}

/// Every path under `dir`, relative to `base`.
fn collect(base: &Path, dir: &Path, paths: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        paths.push(path.strip_prefix(base)?.to_owned());
        if fs::symlink_metadata(&path)?.is_dir() {
            collect(base, &path, paths)?;
        }
    }
    Ok(())
}

/// The fields of a `newc` header that vary here (owners are root).
struct Header {
    ino: u64,
    mode: u32,
    nlink: u32,
    mtime: u64,
    /// A device node's major and minor number.
    rdev: (u32, u32),
}

/// One `newc` entry: the header's fields as eight hex digits each, the
/// name with its NUL, the data, each padded to four bytes.
fn cpio_entry(
    out: &mut impl std::io::Write,
    entry: &Header,
    name: &[u8],
    data: &[u8],
) -> Result<()> {
    let Header {
        ino,
        mode,
        nlink,
        mtime,
        rdev: (major, minor),
    } = entry;
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{mtime:08x}{:08x}{:08x}{:08x}{major:08x}{minor:08x}{:08x}{:08x}",
        0,
        0,
        data.len(),
        0,
        0,
        name.len() + 1,
        0
    );
    out.write_all(header.as_bytes())?;
    out.write_all(name)?;
    out.write_all(&[0])?;
    out.write_all(&[0; 3][..(4 - (header.len() + name.len() + 1) % 4) % 4])?;
    out.write_all(data)?;
    out.write_all(&[0; 3][..(4 - data.len() % 4) % 4])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One `newc` entry, read back.
    struct Entry {
        name: String,
        mode: u32,
        mtime: u64,
        size: usize,
        rdev: (u64, u64),
    }

    /// Every entry of an archive but the trailer.
    fn entries(archive: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut at = 0;
        let field = |at: usize, index: usize| {
            let start = at + 6 + index * 8;
            u64::from_str_radix(
                std::str::from_utf8(&archive[start..start + 8]).expect("hex"),
                16,
            )
            .expect("hex")
        };
        loop {
            assert_eq!(&archive[at..at + 6], b"070701", "magic at {at}");
            let mode = field(at, 1) as u32;
            let mtime = field(at, 5);
            let size = field(at, 6) as usize;
            let rdev = (field(at, 9), field(at, 10));
            let name_len = field(at, 11) as usize;
            let name_start = at + 110;
            let name = String::from_utf8(archive[name_start..name_start + name_len - 1].to_vec())
                .expect("name");
            let data_start = (name_start + name_len).div_ceil(4) * 4;
            at = (data_start + size).div_ceil(4) * 4;
            if name == "TRAILER!!!" {
                assert_eq!(at, archive.len());
                return entries;
            }
            entries.push(Entry {
                name,
                mode,
                mtime,
                size,
                rdev,
            });
        }
    }

    #[test]
    fn the_boot_check_changes_only_attestation_and_engine() {
        let shipped = fs::read_to_string(
            crate::workspace_root()
                .join(RECIPE)
                .join("cloister-host.toml"),
        )
        .expect("shipped settings");
        let changed = |model: bool| -> Vec<String> {
            let settings = boot_check_settings(&shipped, model).expect("boot check settings");
            settings
                .lines()
                .filter(|line| !shipped.lines().any(|s| s == *line))
                .map(str::to_owned)
                .collect()
        };
        let header = "# BOOT CHECK ONLY (`cargo xtask cvm-boot`): SIMULATED attestation; not a release's settings.";
        assert_eq!(changed(true), [header, "provider = \"simulated\""]);
        assert_eq!(
            changed(false),
            [
                header,
                "backend = \"deterministic\"",
                "provider = \"simulated\""
            ]
        );
        let error = boot_check_settings("[attestation]\nprovider = \"tdx\"\n", true)
            .expect_err("nothing to swap");
        assert!(format!("{error:#}").contains("sev-guest"), "{error:#}");
    }

    #[test]
    fn the_initrd_archive_depends_on_the_tree_alone() {
        let write = |order: &[&str]| {
            let dir = tempfile::tempdir().expect("tempdir");
            for name in order {
                let path = dir.path().join(name);
                fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                fs::write(&path, name.as_bytes()).expect("write");
            }
            std::os::unix::fs::symlink("b/c", dir.path().join("link")).expect("symlink");
            let archive = dir.path().with_extension("cpio");
            write_cpio(dir.path(), &archive, 1_700_000_000, &[CONSOLE]).expect("cpio");
            fs::read(&archive).expect("read")
        };
        let first = write(&["a", "b/c", "b/d1"]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = write(&["b/d1", "b/c", "a"]);
        assert_eq!(first, second, "creation order and times must not matter");
        let listed = entries(&first);
        let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/c", "b/d1", "dev/console", "link"]);
        assert!(listed.iter().all(|e| e.mtime == 1_700_000_000));
        assert_eq!(listed[5].mode & 0o170_000, 0o120_000, "a symbolic link");
        assert_eq!(listed[5].size, 3, "its target `b/c`");
        assert_eq!(listed[1].mode & 0o170_000, 0o040_000, "a directory");
        let console = &listed[4];
        assert_eq!(console.mode, 0o020_600, "a character device, root's alone");
        assert_eq!(
            (console.size, console.rdev),
            (0, (5, 1)),
            "/dev/console, empty"
        );
        assert!(
            listed
                .iter()
                .filter(|e| e.name != "dev/console")
                .all(|e| e.rdev == (0, 0))
        );
    }
}
