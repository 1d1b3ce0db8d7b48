//! `/etc/cloister/init.toml`: what the guest's first process sets up and
//! what it runs. The file is part of the initrd, so the launch measurement
//! covers it like every other input of the guest.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail, ensure};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Kernel modules, in load order, relative to
    /// `/lib/modules/RELEASE/kernel`.
    #[serde(default)]
    pub modules: Vec<PathBuf>,
    /// The interface the host is reached on; none leaves only loopback.
    pub network: Option<Network>,
    /// Files the operator provides at launch, outside the measurement.
    #[serde(default)]
    pub provided: Vec<Provided>,
    /// The program the guest exists for.
    pub exec: Exec,
}

/// A static IPv4 address on one interface. No routes: the gateways reach
/// the host from its own subnet, and the host calls out to no one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Network {
    /// e.g. `eth0`.
    pub interface: String,
    /// `ADDRESS/PREFIX`, e.g. `10.0.2.15/24`.
    pub address: String,
}

/// A file the VMM passes in through QEMU's firmware configuration device
/// (`-fw_cfg name=NAME,file=…`), copied to a tmpfs for the host's user.
/// Only what may be the operator's to choose belongs here (the outer hop's
/// TLS certificate and key: sessions are RA-TLS inside that hop): nothing
/// provided is measured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Provided {
    /// The fw_cfg item's name (QEMU requires the `opt/` prefix).
    pub fw_cfg: String,
    /// Where the host reads it; under `/run`, which is a fresh tmpfs.
    pub to: PathBuf,
}

/// What runs once the guest is set up, and as whom.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Exec {
    /// An absolute path in the guest.
    pub program: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    /// The unprivileged user and group it runs as (never 0).
    pub user: u32,
    pub group: u32,
    /// Device nodes handed to that user (e.g. `/dev/sev-guest`); one that
    /// does not exist is skipped: whoever needs it fails without it.
    #[serde(default)]
    pub devices: Vec<PathBuf>,
}

impl Config {
    /// Parses and checks the file's text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text)?;
        ensure!(
            config.exec.program.is_absolute(),
            "exec.program must be an absolute path, not {}",
            config.exec.program.display()
        );
        ensure!(
            config.exec.user != 0 && config.exec.group != 0,
            "exec.user and exec.group must not be root (0): the host runs unprivileged"
        );
        for module in &config.modules {
            ensure!(
                module.is_relative()
                    && module
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_))),
                "module {} must be a plain path under /lib/modules/RELEASE/kernel",
                module.display()
            );
        }
        if let Some(network) = &config.network {
            network.address()?;
        }
        for provided in &config.provided {
            ensure!(
                provided.fw_cfg.starts_with("opt/")
                    && !provided
                        .fw_cfg
                        .split('/')
                        .any(|part| part.is_empty() || part == "." || part == ".."),
                "provided.fw-cfg {:?} must be a plain name under opt/",
                provided.fw_cfg
            );
            ensure!(
                provided.to.starts_with("/run")
                    && provided
                        .to
                        .components()
                        .all(|c| !matches!(c, std::path::Component::ParentDir)),
                "provided.to {} must be a path under /run",
                provided.to.display()
            );
        }
        Ok(config)
    }
}

impl Network {
    /// The address and its netmask.
    pub fn address(&self) -> Result<(Ipv4Addr, Ipv4Addr)> {
        let Some((address, prefix)) = self.address.split_once('/') else {
            bail!("network.address {:?} is not ADDRESS/PREFIX", self.address);
        };
        let address: Ipv4Addr = address
            .parse()
            .with_context(|| format!("network.address {:?}", self.address))?;
        let prefix: u32 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=32).contains(p))
            .with_context(|| format!("network.address {:?}: prefix not in 1..=32", self.address))?;
        let mask = u32::MAX << (32 - prefix);
        Ok((address, Ipv4Addr::from(mask)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../deploy/images/cvm/init.toml");

    #[test]
    fn the_shipped_configuration_runs_the_host_unprivileged() {
        let config = Config::parse(SHIPPED).expect("shipped init.toml");
        assert_eq!(
            config.exec.program,
            PathBuf::from("/usr/local/bin/cloister-host")
        );
        assert_eq!((config.exec.user, config.exec.group), (65532, 65532));
        let provided: Vec<_> = config.provided.iter().map(|p| p.to.clone()).collect();
        assert_eq!(
            provided,
            [
                PathBuf::from("/run/cloister/tls/cert.pem"),
                PathBuf::from("/run/cloister/tls/key.pem")
            ]
        );
        assert!(config.modules.iter().any(|m| m.ends_with("virtio_net.ko")));
        let network = config.network.expect("a network");
        assert_eq!(
            network.address().expect("address"),
            (Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(255, 255, 255, 0))
        );
    }

    #[test]
    fn root_users_relative_programs_and_escaping_modules_are_refused() {
        let base = |extra: &str, exec: &str| format!("{extra}\n[exec]\n{exec}\n");
        let good = "program = \"/bin/x\"\nuser = 1\ngroup = 1";
        assert!(Config::parse(&base("", good)).is_ok());
        for (extra, exec, says) in [
            ("", "program = \"/bin/x\"\nuser = 0\ngroup = 1", "root"),
            ("", "program = \"/bin/x\"\nuser = 1\ngroup = 0", "root"),
            ("", "program = \"bin/x\"\nuser = 1\ngroup = 1", "absolute"),
            ("modules = [\"../../evil.ko\"]", good, "plain path"),
            ("modules = [\"/evil.ko\"]", good, "plain path"),
            ("surprise = 1", good, "unknown field"),
            (
                "[[provided]]\nfw-cfg = \"etc/x\"\nto = \"/run/x\"",
                good,
                "under opt/",
            ),
            (
                "[[provided]]\nfw-cfg = \"opt/../x\"\nto = \"/run/x\"",
                good,
                "under opt/",
            ),
            (
                "[[provided]]\nfw-cfg = \"opt/x\"\nto = \"/etc/passwd\"",
                good,
                "under /run",
            ),
            (
                "[[provided]]\nfw-cfg = \"opt/x\"\nto = \"/run/../etc/passwd\"",
                good,
                "under /run",
            ),
        ] {
            let error = Config::parse(&base(extra, exec)).expect_err(extra);
            assert!(format!("{error:#}").contains(says), "{error:#}");
        }
    }

    #[test]
    fn addresses_need_a_prefix_in_range() {
        let network = |address: &str| Network {
            interface: "eth0".into(),
            address: address.into(),
        };
        assert_eq!(
            network("192.168.1.7/16").address().expect("ok").1,
            Ipv4Addr::new(255, 255, 0, 0)
        );
        assert_eq!(
            network("10.1.2.3/32").address().expect("ok").1,
            Ipv4Addr::new(255, 255, 255, 255)
        );
        for bad in [
            "10.0.2.15",
            "10.0.2.15/0",
            "10.0.2.15/33",
            "10.0.2/24",
            "x/24",
        ] {
            assert!(network(bad).address().is_err(), "{bad}");
        }
    }
}
