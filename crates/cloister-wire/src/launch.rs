//! What HOST_DATA binds: the three inputs of a host launch that the launch
//! measurement does not cover.
//!
//! The SEV-SNP launch measurement covers the VM image (firmware, kernel,
//! initrd, command line and, in Cloister, the host binary). The policies the
//! host enforces, the model weights it computes with and its settings are
//! read after boot, so they are bound through HOST_DATA instead: the
//! hypervisor sets it at launch, the host refuses to start unless it equals
//! [`HostData::of_launch`] of what it actually loaded, and the client accepts
//! only a HOST_DATA that a release names together with its three parts.
//!
//! Construction (SHA-256):
//!
//! ```text
//! "cloister-launch-v1" || policy_set (32) || model_tag (1) || model (32, if tag 1)
//!   || host_config (32)
//! ```
//!
//! `model_tag` is 0 for a backend without weights (a simulated engine) and 1
//! otherwise; every part has a fixed length, so the encoding is unambiguous.

use sha2::{Digest as _, Sha256};

use crate::HostData;

/// Domain-separation prefix of [`HostData::of_launch`].
pub const LAUNCH_DOMAIN: &[u8] = b"cloister-launch-v1";

impl HostData {
    /// The HOST_DATA of a host that enforces the policy set with digest
    /// `policy_set`, computes with the model file whose SHA-256 is `model`
    /// (`None`: a simulated engine without weights), and runs with the
    /// settings whose digest is `host_config`.
    #[must_use]
    pub fn of_launch(
        policy_set: &[u8; 32],
        model: Option<&[u8; 32]>,
        host_config: &[u8; 32],
    ) -> Self {
        let mut hash = Sha256::new();
        hash.update(LAUNCH_DOMAIN);
        hash.update(policy_set);
        match model {
            Some(model) => {
                hash.update([1]);
                hash.update(model);
            }
            None => hash.update([0]),
        }
        hash.update(host_config);
        Self(hash.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_changes_host_data() {
        let base = HostData::of_launch(&[1; 32], Some(&[2; 32]), &[3; 32]);
        assert_ne!(
            base,
            HostData::of_launch(&[9; 32], Some(&[2; 32]), &[3; 32])
        );
        assert_ne!(
            base,
            HostData::of_launch(&[1; 32], Some(&[9; 32]), &[3; 32])
        );
        assert_ne!(base, HostData::of_launch(&[1; 32], None, &[3; 32]));
        assert_ne!(
            base,
            HostData::of_launch(&[1; 32], Some(&[2; 32]), &[9; 32])
        );
    }

    #[test]
    fn the_construction_is_the_documented_one() {
        let mut hash = Sha256::new();
        hash.update(b"cloister-launch-v1");
        hash.update([1; 32]);
        hash.update([0]);
        hash.update([3; 32]);
        let expected: [u8; 32] = hash.finalize().into();
        assert_eq!(HostData::of_launch(&[1; 32], None, &[3; 32]).0, expected);
    }
}
