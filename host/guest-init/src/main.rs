//! `cloister-init`: the first process of the feature host's SEV-SNP guest.
//!
//! The guest has no shell, no ssh and no init system: the kernel runs this
//! program from the measured initrd (`rdinit=`), and it does only what the
//! host cannot do for itself, in this order, stopping at the first failure
//! (the kernel then halts the guest, as a launch that is not the measured
//! one must):
//!
//! 1. mounts `/dev` (devtmpfs), `/proc`, `/sys` (read-only), `/tmp` and
//!    `/run`, none of them executable;
//! 2. loads the kernel modules of its configuration, in order (virtio
//!    networking, fw_cfg, the `sev-guest` driver);
//! 3. copies the files the operator provides through fw_cfg (the outer
//!    hop's TLS certificate and key) to `/run`, readable by the host's user
//!    alone;
//! 4. brings up loopback and gives the configured interface its address;
//! 5. hands the configured devices (`/dev/sev-guest`) to the host's user;
//! 6. remounts the root read-only;
//! 7. sets `no_new_privs` and replaces itself with the host, running as an
//!    unprivileged user with no groups, no capabilities and an empty
//!    environment.
//!
//! Its settings are `/etc/cloister/init.toml`, in the initrd, so the launch
//! measurement covers them.

mod config;
mod net;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result};
use clap::Parser;
use nix::errno::Errno;
use nix::kmod::{ModuleInitFlags, finit_module};
use nix::mount::{MsFlags, mount};

use config::Config;

/// Sets up the guest, then runs the feature host in it.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The guest's settings.
    #[arg(long, default_value = "/etc/cloister/init.toml")]
    config: PathBuf,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        // The serial console keeps every byte: no colour codes.
        .with_ansi(false)
        .init();
    let cli = Cli::parse();
    // `boot` returns only on failure: on success the host has replaced this process.
    let Err(error) = boot(&cli.config);
    tracing::error!(event = "guest-init-failed", "{error:#}");
    ExitCode::FAILURE
}

fn boot(config_path: &Path) -> Result<std::convert::Infallible> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config =
        Config::parse(&text).with_context(|| format!("settings {}", config_path.display()))?;
    mount_filesystems()?;
    load_modules(&config.modules)?;
    let exec = &config.exec;
    for provided in &config.provided {
        provide(provided, exec.user, exec.group)?;
    }
    net::up("lo")?;
    if let Some(network) = &config.network {
        let (address, netmask) = network.address()?;
        net::configure(&network.interface, address, netmask)?;
        tracing::info!(event = "network", interface = %network.interface, %address, %netmask);
    }
    for device in exec.devices.iter().filter(|d| d.exists()) {
        std::os::unix::fs::chown(device, Some(exec.user), Some(exec.group))
            .with_context(|| format!("handing {} to the host's user", device.display()))?;
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .context("remounting the root read-only")?;
    nix::sys::prctl::set_no_new_privs().context("setting no_new_privs")?;
    tracing::info!(event = "exec", program = %exec.program.display(), user = exec.user);
    // Without a fork: the host becomes PID 1, so the guest ends with it.
    let error = Command::new(&exec.program)
        .args(&exec.args)
        .env_clear()
        .current_dir("/")
        .uid(exec.user)
        .gid(exec.group)
        .exec();
    Err(error).with_context(|| format!("running {}", exec.program.display()))
}

/// The kernel's filesystems; nothing on them may be executed.
fn mount_filesystems() -> Result<()> {
    let common = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    for (fstype, target, flags, data) in [
        ("devtmpfs", "/dev", common, Some("mode=0755")),
        ("proc", "/proc", common | MsFlags::MS_NODEV, None),
        (
            "sysfs",
            "/sys",
            common | MsFlags::MS_NODEV | MsFlags::MS_RDONLY,
            None,
        ),
        (
            "tmpfs",
            "/tmp",
            common | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
        (
            "tmpfs",
            "/run",
            common | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
    ] {
        std::fs::create_dir_all(target).with_context(|| format!("creating {target}"))?;
        mount(Some(fstype), target, Some(fstype), flags, data)
            .with_context(|| format!("mounting {fstype} on {target}"))?;
    }
    Ok(())
}

/// Copies one fw_cfg item to its place, owned by `user` and readable by it alone.
fn provide(provided: &config::Provided, user: u32, group: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let from = Path::new("/sys/firmware/qemu_fw_cfg/by_name")
        .join(&provided.fw_cfg)
        .join("raw");
    let bytes = std::fs::read(&from).with_context(|| {
        format!(
            "reading {} (the VMM must pass `-fw_cfg name={},file=…`)",
            from.display(),
            provided.fw_cfg
        )
    })?;
    let to = &provided.to;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(to, &bytes).with_context(|| format!("writing {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o400))?;
    std::os::unix::fs::chown(to, Some(user), Some(group))?;
    tracing::info!(event = "provided", name = %provided.fw_cfg, bytes = bytes.len() as u64);
    Ok(())
}

/// Loads each module from `/lib/modules/RELEASE/kernel`. A driver whose
/// device this machine lacks (`ENODEV`, e.g. `sev-guest` outside SEV-SNP)
/// is logged and skipped: what needs the device fails without it.
fn load_modules(modules: &[PathBuf]) -> Result<()> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .context("reading the kernel's release")?;
    let base = Path::new("/lib/modules")
        .join(release.trim())
        .join("kernel");
    for module in modules {
        let path = base.join(module);
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        // No module parameters: every module runs with its defaults.
        match finit_module(&file, c"", ModuleInitFlags::empty()) {
            Ok(()) => tracing::info!(event = "module-loaded", module = %module.display()),
            Err(Errno::EEXIST) => {
                tracing::info!(event = "module-present", module = %module.display())
            }
            Err(Errno::ENODEV) => {
                tracing::warn!(event = "module-no-device", module = %module.display())
            }
            Err(errno) => {
                return Err(errno).with_context(|| format!("loading {}", path.display()));
            }
        }
    }
    Ok(())
}
