//! Pinned trust anchors: the AMD root keys, and opt-in simulated roots.
//!
//! Evidence is trusted only if its endorsement key chains to one of these
//! roots. An ARK carried inside the evidence is never trusted by itself: it
//! only selects which pinned root to use, compared by public key.

use serde::{Deserialize, Serialize};
use sev::certs::snp::{Certificate, Verifiable, builtin};
use x509_cert::der::Encode;

/// AMD EPYC product lines with SEV-SNP, each with its own ARK and ASK, and
/// each numbering its firmware (TCB) its own way: Turin adds an FMC level,
/// and equal numbers on two lines mean different firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProductLine {
    /// 3rd generation EPYC.
    Milan,
    /// 4th generation EPYC.
    Genoa,
    /// 5th generation EPYC.
    Turin,
}

impl ProductLine {
    /// The line a VCEK's or VLEK's product name (e.g. `Milan-B0`, `Turin`) names.
    pub fn from_product_name(name: &str) -> Option<Self> {
        match name.split('-').next()? {
            "Milan" => Some(Self::Milan),
            "Genoa" => Some(Self::Genoa),
            "Turin" => Some(Self::Turin),
            _ => None,
        }
    }

    /// The line of a CPU by its CPUID family and model (reports of version 3
    /// and later carry both).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match sev::Generation::identify_cpu(family, model).ok()? {
            sev::Generation::Milan => Some(Self::Milan),
            sev::Generation::Genoa => Some(Self::Genoa),
            sev::Generation::Turin => Some(Self::Turin),
            _ => None,
        }
    }

    /// Whether this line's TCB has an FMC component.
    pub fn has_fmc(self) -> bool {
        self == Self::Turin
    }
}

/// Which kind of root anchored a piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootKind {
    /// A genuine AMD root, built into this crate (via the `sev` crate).
    Amd(ProductLine),
    /// A locally generated development root: **no hardware protection**.
    Simulated,
}

/// Why a certificate chain did not anchor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No pinned root has the public key of the ARK supplied, or (without an
    /// ARK) no pinned root signs the supplied or pinned ASK.
    #[error("certificate chain does not lead to a pinned root")]
    UntrustedRoot,
    /// A pinned root was found, but a signature along the chain is wrong.
    #[error("certificate chain to the {root:?} root is broken: {reason}")]
    Broken {
        /// The root the chain claimed.
        root: RootKind,
        /// What failed.
        reason: String,
    },
}

/// A pinned ARK with its (default) ASK.
#[derive(Debug, Clone)]
struct PinnedRoot {
    kind: RootKind,
    ark: Certificate,
    ask: Certificate,
    ark_key: Vec<u8>,
}

impl PinnedRoot {
    fn new(kind: RootKind, ark: Certificate, ask: Certificate) -> Self {
        let ark_key = public_key_der(&ark);
        Self {
            kind,
            ark,
            ask,
            ark_key,
        }
    }
}

/// The roots a verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    roots: Vec<PinnedRoot>,
}

impl TrustAnchors {
    /// The genuine AMD roots for Milan, Genoa and Turin, as shipped by the
    /// `sev` crate.
    pub fn amd() -> Self {
        [ProductLine::Milan, ProductLine::Genoa, ProductLine::Turin]
            .into_iter()
            .fold(Self::default(), |anchors, line| anchors.with_amd(line))
    }

    /// Adds the genuine AMD root of one product line. A built-in certificate
    /// that fails to parse is left out, which fails closed; a unit test
    /// guards against that.
    pub fn with_amd(mut self, line: ProductLine) -> Self {
        let (ark, ask) = match line {
            ProductLine::Milan => (builtin::milan::ark(), builtin::milan::ask()),
            ProductLine::Genoa => (builtin::genoa::ark(), builtin::genoa::ask()),
            ProductLine::Turin => (builtin::turin::ark(), builtin::turin::ask()),
        };
        if let (Ok(ark), Ok(ask)) = (ark, ask) {
            self.roots
                .push(PinnedRoot::new(RootKind::Amd(line), ark, ask));
        }
        self
    }

    /// Adds a simulated root. Evidence anchored here is still refused unless
    /// the policy sets `allow_simulated = true`.
    pub fn with_simulated(mut self, ark: Certificate, ask: Certificate) -> Self {
        self.roots
            .push(PinnedRoot::new(RootKind::Simulated, ark, ask));
        self
    }

    /// Checks `ark? -> ask? -> vek` against the pinned roots, and names the root.
    pub fn anchor(
        &self,
        supplied_ark: Option<&Certificate>,
        supplied_ask: Option<&Certificate>,
        vek: &Certificate,
    ) -> Result<RootKind, ChainError> {
        let candidates: Vec<&PinnedRoot> = match supplied_ark {
            Some(ark) => {
                let key = public_key_der(ark);
                self.roots
                    .iter()
                    .filter(|root| root.ark_key == key)
                    .collect()
            }
            None => self.roots.iter().collect(),
        };
        // Without a supplied ARK or ASK we cannot tell which root was meant,
        // so a failure under one root is not yet "broken": try the next.
        let root_was_named = supplied_ark.is_some();
        let mut broken = None;
        for root in candidates {
            let ask = supplied_ask.unwrap_or(&root.ask);
            if let Err(e) = (&root.ark, ask).verify() {
                if root_was_named {
                    broken = Some(broken_chain(root.kind, "ARK does not sign the ASK", &e));
                }
                continue;
            }
            match (ask, vek).verify() {
                Ok(()) => return Ok(root.kind),
                Err(e) if root_was_named || supplied_ask.is_some() => {
                    broken = Some(broken_chain(
                        root.kind,
                        "ASK does not sign the endorsement key",
                        &e,
                    ));
                }
                Err(_) => {}
            }
        }
        Err(broken.unwrap_or(ChainError::UntrustedRoot))
    }
}

fn broken_chain(root: RootKind, what: &str, error: &std::io::Error) -> ChainError {
    ChainError::Broken {
        root,
        reason: format!("{what}: {error}"),
    }
}

/// The DER of a certificate's SubjectPublicKeyInfo (empty if unencodable,
/// which matches no pinned key).
fn public_key_der(cert: &Certificate) -> Vec<u8> {
    let x509: x509_cert::Certificate = cert.clone().into();
    x509.tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_builtin_amd_roots_load_and_sign_their_ask() {
        let anchors = TrustAnchors::amd();
        assert_eq!(anchors.roots.len(), 3);
        for root in &anchors.roots {
            (&root.ark, &root.ark)
                .verify()
                .unwrap_or_else(|e| panic!("{:?} ARK: {e}", root.kind));
            (&root.ark, &root.ask)
                .verify()
                .unwrap_or_else(|e| panic!("{:?} ASK: {e}", root.kind));
        }
    }
}
