//! Brings interfaces up and gives one an IPv4 address, with the classic
//! `SIOCSIF*` ioctls: three calls, where a netlink client would be a
//! dependency larger than this whole program.
#![allow(unsafe_code)]

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{Context as _, Result, ensure};

/// An `AF_INET` datagram socket: the handle the interface ioctls go through.
struct ControlSocket(OwnedFd);

impl ControlSocket {
    fn open() -> Result<Self> {
        // SAFETY: plain syscall with constant arguments; the result is
        // checked before it is used as a descriptor.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("opening a control socket");
        }
        // SAFETY: `fd` is a descriptor just returned to us and owned by no one else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// One interface ioctl on `request`, which the kernel may update.
    fn ioctl(&self, name: &str, what: libc::c_ulong, request: &mut libc::ifreq) -> Result<()> {
        // SAFETY: `request` is a valid, exclusively borrowed `ifreq`, the
        // type every `SIOC[GS]IF*` request reads and writes, and the
        // descriptor is open for the whole call.
        let done =
            unsafe { libc::ioctl(self.0.as_raw_fd(), what as _, request as *mut libc::ifreq) };
        if done < 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("ioctl {what:#x} on {name}"));
        }
        Ok(())
    }
}

/// An `ifreq` for `name` with an empty payload.
fn request(name: &str, payload: libc::__c_anonymous_ifr_ifru) -> Result<libc::ifreq> {
    ensure!(
        !name.is_empty() && name.len() < libc::IFNAMSIZ && !name.contains('\0'),
        "interface name {name:?} is not a kernel interface name"
    );
    let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (to, from) in ifr_name.iter_mut().zip(name.bytes()) {
        *to = from as libc::c_char;
    }
    Ok(libc::ifreq {
        ifr_name,
        ifr_ifru: payload,
    })
}

/// `AF_INET` socket address with port 0, as `SIOCSIFADDR` takes it.
fn inet(address: Ipv4Addr) -> libc::sockaddr {
    let mut sa_data = [0 as libc::c_char; 14];
    for (to, from) in sa_data[2..6].iter_mut().zip(address.octets()) {
        *to = from as libc::c_char;
    }
    libc::sockaddr {
        sa_family: libc::AF_INET as libc::sa_family_t,
        sa_data,
    }
}

/// Sets `IFF_UP` on `name`, keeping its other flags.
pub fn up(name: &str) -> Result<()> {
    let socket = ControlSocket::open()?;
    let mut flags = request(name, libc::__c_anonymous_ifr_ifru { ifru_flags: 0 })?;
    socket.ioctl(name, libc::SIOCGIFFLAGS, &mut flags)?;
    // SAFETY: `SIOCGIFFLAGS` succeeded, so the kernel wrote `ifru_flags`.
    let current = unsafe { flags.ifr_ifru.ifru_flags };
    flags.ifr_ifru.ifru_flags = current | libc::IFF_UP as libc::c_short;
    socket.ioctl(name, libc::SIOCSIFFLAGS, &mut flags)
}

/// Gives `name` `address` with `netmask` and brings it up.
pub fn configure(name: &str, address: Ipv4Addr, netmask: Ipv4Addr) -> Result<()> {
    let socket = ControlSocket::open()?;
    // Both requests read a `sockaddr` at the start of the union, which
    // `ifru_addr` and `ifru_netmask` alike name.
    for (what, value) in [
        (libc::SIOCSIFADDR, address),
        (libc::SIOCSIFNETMASK, netmask),
    ] {
        let mut set = request(
            name,
            libc::__c_anonymous_ifr_ifru {
                ifru_addr: inet(value),
            },
        )?;
        socket.ioctl(name, what, &mut set)?;
    }
    up(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_the_kernel_would_refuse_are_refused_here() {
        let empty = || libc::__c_anonymous_ifr_ifru { ifru_flags: 0 };
        assert!(request("eth0", empty()).is_ok());
        for bad in ["", "a-name-far-too-long", "eth\0x"] {
            assert!(request(bad, empty()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_inet_address_is_port_then_address_in_network_order() {
        let sa = inet(Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(sa.sa_family, libc::AF_INET as libc::sa_family_t);
        let bytes: Vec<u8> = sa.sa_data.iter().map(|b| *b as u8).collect();
        assert_eq!(&bytes[..6], &[0, 0, 10, 0, 2, 15]);
        assert!(bytes[6..].iter().all(|b| *b == 0));
    }

    /// A missing interface is the kernel's error, naming it, not a silent skip.
    #[test]
    fn flags_of_a_missing_interface_are_an_error_that_names_it() {
        let error = up("cloister-none0").expect_err("no such interface");
        assert!(format!("{error:#}").contains("cloister-none0"), "{error:#}");
    }
}
