//! What the VCEK (or VLEK) certificate says about the platform.
//!
//! AMD encodes the TCB the key was derived for, the chip id and the product
//! name as X.509 extensions under 1.3.6.1.4.1.3704.1 (AMD "VCEK Certificate
//! and KDS Interface Specification", 57230, chapter 3). A report is only
//! trusted if its REPORTED_TCB equals the TCB its key was issued for.

use x509_cert::der::asn1::{Ia5StringRef, ObjectIdentifier};
use x509_cert::der::{Decode, Encode};

/// Extension OIDs of AMD's endorsement key certificates.
pub(crate) mod oid {
    use super::ObjectIdentifier;
    /// Product name, an IA5String such as "Milan-B0".
    pub const PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
    /// Bootloader security patch level.
    pub const BOOTLOADER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
    /// PSP OS (TEE) security patch level.
    pub const TEE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
    /// SNP firmware security patch level.
    pub const SNP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
    /// Microcode security patch level.
    pub const MICROCODE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
    /// FMC security patch level (Turin and later).
    pub const FMC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
    /// Chip id (raw bytes: 64 on Milan/Genoa, 8 on Turin).
    pub const HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
}

/// A TCB version: the security patch levels of the platform's components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tcb {
    /// FMC patch level (Turin and later; absent before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// PSP bootloader patch level.
    pub bootloader: u8,
    /// PSP operating system patch level.
    pub tee: u8,
    /// SNP firmware patch level.
    pub snp: u8,
    /// Microcode patch level.
    pub microcode: u8,
}

impl From<sev::firmware::host::TcbVersion> for Tcb {
    fn from(tcb: sev::firmware::host::TcbVersion) -> Self {
        Self {
            fmc: tcb.fmc,
            bootloader: tcb.bootloader,
            tee: tcb.tee,
            snp: tcb.snp,
            microcode: tcb.microcode,
        }
    }
}

/// Platform facts read from an endorsement key certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndorsementFacts {
    /// The TCB the key was derived for.
    pub tcb: Tcb,
    /// The chip id the key belongs to (absent in a VLEK).
    pub hw_id: Option<Vec<u8>>,
    /// The product name, e.g. "Milan-B0".
    pub product_name: Option<String>,
}

/// Why the endorsement key's extensions were unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndorsementError {
    /// A TCB extension is missing.
    #[error("endorsement key certificate lacks the {0} TCB extension")]
    MissingTcb(&'static str),
    /// An extension is not DER of the expected type.
    #[error("endorsement key certificate extension {0} is malformed")]
    Malformed(ObjectIdentifier),
}

impl EndorsementFacts {
    /// Reads the AMD extensions of a VCEK or VLEK certificate.
    pub fn from_certificate(cert: &x509_cert::Certificate) -> Result<Self, EndorsementError> {
        let extensions = cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or_default();
        let find = |id: ObjectIdentifier| {
            extensions
                .iter()
                .find(|ext| ext.extn_id == id)
                .map(|ext| ext.extn_value.as_bytes())
        };
        let level = |id: ObjectIdentifier| -> Result<Option<u8>, EndorsementError> {
            find(id)
                .map(|der| u8::from_der(der).map_err(|_| EndorsementError::Malformed(id)))
                .transpose()
        };
        let required = |id, name| level(id)?.ok_or(EndorsementError::MissingTcb(name));
        let tcb = Tcb {
            fmc: level(oid::FMC)?,
            bootloader: required(oid::BOOTLOADER, "bootloader")?,
            tee: required(oid::TEE, "TEE")?,
            snp: required(oid::SNP, "SNP")?,
            microcode: required(oid::MICROCODE, "microcode")?,
        };
        let product_name = find(oid::PRODUCT_NAME)
            .map(|der| {
                Ia5StringRef::from_der(der)
                    .map(|name| name.as_str().to_owned())
                    .map_err(|_| EndorsementError::Malformed(oid::PRODUCT_NAME))
            })
            .transpose()?;
        Ok(Self {
            tcb,
            hw_id: find(oid::HW_ID).map(<[u8]>::to_vec),
            product_name,
        })
    }

    /// True if `chip_id` (64 bytes from the report) is this key's chip. Turin
    /// certificates carry only the first 8 bytes; the rest of the report's
    /// chip id must then be zero.
    pub fn matches_chip(&self, chip_id: &[u8; 64]) -> bool {
        match &self.hw_id {
            Some(hw_id) if !hw_id.is_empty() && hw_id.len() <= chip_id.len() => {
                let (head, tail) = chip_id.split_at(hw_id.len());
                head == hw_id.as_slice() && tail.iter().all(|b| *b == 0)
            }
            _ => false,
        }
    }
}

/// DER of the extension value for a patch level (an ASN.1 INTEGER).
pub(crate) fn level_der(level: u8) -> Vec<u8> {
    level.to_der().unwrap_or_default()
}
