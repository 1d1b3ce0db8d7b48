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
//! ssh), the reproducible `cloister-host`, its configuration
//! (`deploy/images/cvm/cloister-host.toml`), the reviewed plugins and
//! policies, the model, and the kernel modules of `deploy/images/cvm/modules`.
//!
//! `sev-snp-measure` (PyPI) computes the measurement for the vCPU count and
//! type asked for; `target/cvm/launch.json` records it with the guest policy
//! and the digest of every input, and `cloister-release submit --cvm-launch
//! target/cvm/launch.json` logs it. `--verify` builds and measures twice.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::images::{self, Content, Image};
use crate::{fetch_model, reproducible, run, stdout_of};

/// The recipe's files, relative to the workspace root.
const RECIPE: &str = "deploy/images/cvm";
/// Outputs, relative to the workspace root.
const OUT: &str = "target/cvm";
/// The guest's host: its binary, plugins, policies and model.
const CVM_HOST: Image = Image {
    party: "cvm",
    binary: "cloister-host",
    content: &[Content::Plugins, Content::Policies, Content::Model],
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
    let record = reproducible::build(root, false)?;
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

fn build_and_measure(
    root: &Path,
    out: &Path,
    record: &reproducible::BuildRecord,
    options: &Options,
) -> Result<Launch> {
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
    fs::copy(
        recipe.join("cloister-host.toml"),
        guest.join("etc/cloister/cloister-host.toml"),
    )?;
    let modules = fs::read_to_string(recipe.join("modules"))?;
    for module in modules
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let relative = format!("lib/modules/{kernel_version}/kernel/{module}");
        let to = guest.join(&relative);
        fs::create_dir_all(to.parent().context("a module path")?)?;
        fs::copy(packages.join(&relative), &to)
            .with_context(|| format!("the kernel package has no {relative}"))?;
    }

    images::normalise_modes(&guest)?;
    run(Command::new("chmod").arg("1777").arg(guest.join("tmp")))?;
    let initrd = out.join("initrd.cpio");
    write_cpio(&guest, &initrd, record.source_date_epoch)?;
    fs::remove_dir_all(&context)?;
    fs::remove_dir_all(&packages)?;

    let cmdline = fs::read_to_string(recipe.join("cmdline"))?
        .trim()
        .to_owned();
    let measurement = measure(root, &ovmf, &kernel, &initrd, &cmdline, options)?;
    Ok(Launch {
        measurement,
        snp_policy: SNP_POLICY,
        vcpus: options.vcpus,
        vcpu_type: options.vcpu_type.clone(),
        cmdline,
        ovmf_sha256: sha256_file(&ovmf)?,
        kernel_sha256: sha256_file(&kernel)?,
        initrd_sha256: sha256_file(&initrd)?,
        source_commit: record.source_commit.clone(),
    })
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

/// Writes `dir`'s tree as a `newc` cpio archive: entries sorted by path,
/// owned by root, dated `mtime`, numbered in order, so equal trees give
/// equal archives.
fn write_cpio(dir: &Path, archive: &Path, mtime: u64) -> Result<()> {
    let mut paths = Vec::new();
    collect(dir, dir, &mut paths)?;
    paths.sort();
    let mut out = std::io::BufWriter::new(fs::File::create(archive)?);
    for (ino, relative) in paths.iter().enumerate() {
        let path = dir.join(relative);
        let meta = fs::symlink_metadata(&path)?;
        let data = if meta.file_type().is_symlink() {
            fs::read_link(&path)?.into_os_string().into_encoded_bytes()
        } else if meta.is_file() {
            fs::read(&path)?
        } else {
            Vec::new()
        };
        let nlink = if meta.is_dir() { 2 } else { 1 };
        let name = relative.as_os_str().as_encoded_bytes();
        cpio_entry(
            &mut out,
            ino as u64 + 1,
            meta.permissions().mode() & 0o177_777,
            nlink,
            mtime,
            name,
            &data,
        )?;
    }
    cpio_entry(&mut out, 0, 0, 1, 0, b"TRAILER!!!", &[])?;
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

/// One `newc` entry: the header's fields as eight hex digits each, the
/// name with its NUL, the data, each padded to four bytes.
fn cpio_entry(
    out: &mut impl std::io::Write,
    ino: u64,
    mode: u32,
    nlink: u32,
    mtime: u64,
    name: &[u8],
    data: &[u8],
) -> Result<()> {
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{mtime:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
        0,
        0,
        data.len(),
        0,
        0,
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

    /// The fields of each `newc` header and the names, read back.
    fn entries(archive: &[u8]) -> Vec<(String, u32, u64, usize)> {
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
            entries.push((name, mode, mtime, size));
        }
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
            write_cpio(dir.path(), &archive, 1_700_000_000).expect("cpio");
            fs::read(&archive).expect("read")
        };
        let first = write(&["a", "b/c", "b/d1"]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = write(&["b/d1", "b/c", "a"]);
        assert_eq!(first, second, "creation order and times must not matter");
        let listed = entries(&first);
        let names: Vec<&str> = listed.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/c", "b/d1", "link"]);
        assert!(listed.iter().all(|e| e.2 == 1_700_000_000));
        assert_eq!(listed[4].1 & 0o170_000, 0o120_000, "a symbolic link");
        assert_eq!(listed[4].3, 3, "its target `b/c`");
        assert_eq!(listed[1].1 & 0o170_000, 0o040_000, "a directory");
    }
}
