//! **SIMULATED** SEV-SNP platform for development and CI — no hardware
//! protection whatsoever.
//!
//! It produces reports in the real layout (version 3, Milan CPUID), signed
//! with ECDSA P-384 by a simulated VCEK, which is certified by a simulated
//! ASK and ARK with AMD's key types (RSA-4096, RSA-PSS with SHA-384) and
//! AMD's TCB and chip-id extensions. The same verifier code therefore runs
//! on simulated and genuine evidence; a verifier accepts the simulated root
//! only when it was pinned explicitly *and* the policy sets
//! `allow_simulated = true`. Every certificate's subject says SIMULATED.
//!
//! In simulated mode there is no launch measurement by firmware, so the
//! host derives one with [`simulated_measurement`] from what it runs.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use cloister_wire::{HostData, Measurement};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRngCore, OsRng, SeedableRng};
use rsa::RsaPrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use sev::firmware::guest::{AttestationReport, GuestPolicy, KeyInfo, PlatformInfo};
use sev::firmware::host::TcbVersion;
use sev::parser::ByteParser;
use sha2::{Digest, Sha256, Sha384};
use x509_cert::der::Encode;
use x509_cert::der::asn1::{BitString, Ia5String, OctetString};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::time::Validity;
use x509_cert::{TbsCertificate, Version};

use crate::cert_table::{CertKind, CertTable};
use crate::endorsement::{Tcb, level_der, oid};
use crate::evidence::Evidence;
use crate::policy::LaunchFacts;
use crate::report::RawReport;
use crate::roots::{ProductLine, TrustAnchors};

/// Domain-separation prefix of [`simulated_measurement`].
pub const SIMULATED_MEASUREMENT_DOMAIN: &[u8] = b"cloister-simulated-measurement-v1";

/// The public seed of the shared **development** platform. Every
/// development host started without its own seed runs on the platform
/// `SimulatedPlatform::from_seed(DEVELOPMENT_SEED, DEVELOPMENT_TCB)`, so a
/// development client pins the same simulated root by deriving it from this
/// seed. It is public: evidence from it proves nothing to anyone.
pub const DEVELOPMENT_SEED: [u8; 32] = *b"cloister-simulated-platform-dev!";

/// The TCB the development platform reports (the Milan levels of the
/// shared test data), and the minimum a development client can require.
pub const DEVELOPMENT_TCB: Tcb = Tcb {
    fmc: None,
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
};

/// Key size of the simulated ARK and ASK, as AMD's.
const RSA_BITS: usize = 4096;
/// Report version written (SNP ABI 1.55, which carries the CPUID).
const REPORT_VERSION: u32 = 3;
/// ECDSA P-384 with SHA-384, the only SIG_ALGO value defined.
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The launch measurement a simulated CVM reports, derived from what it runs:
///
/// ```text
/// SHA-384("cloister-simulated-measurement-v1" || host_binary
///         || u64 count || plugin digests (sorted, deduplicated) || host_data)
/// ```
///
/// `host_binary` is the SHA-256 of the host executable, `plugin_digests` the
/// SHA-256 of each plugin `.wasm`, `host_data` the launch's HOST_DATA.
/// Changing any of them changes the measurement; plugin order does not.
pub fn simulated_measurement(
    host_binary: &[u8; 32],
    plugin_digests: &[[u8; 32]],
    host_data: &HostData,
) -> Measurement {
    let mut plugins = plugin_digests.to_vec();
    plugins.sort_unstable();
    plugins.dedup();
    let mut hash = Sha384::new();
    hash.update(SIMULATED_MEASUREMENT_DOMAIN);
    hash.update(host_binary);
    hash.update((plugins.len() as u64).to_be_bytes());
    plugins.iter().for_each(|digest| hash.update(digest));
    hash.update(host_data);
    Measurement(hash.finalize().into())
}

/// Why the simulated platform could not produce keys, certificates or a report.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    /// RSA key generation or signing failed.
    #[error("simulated RSA key: {0}")]
    Rsa(#[from] rsa::Error),
    /// Building a certificate failed.
    #[error("simulated certificate: {0}")]
    Certificate(String),
    /// The `sev` crate refused to encode the report.
    #[error("simulated report: {0}")]
    Report(#[from] std::io::Error),
    /// The cache of [`SimulatedRoot::cached`] could not be read or written.
    #[error("simulated root cache {}: {source}", path.display())]
    Cache {
        /// The cache file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<x509_cert::der::Error> for SimulationError {
    fn from(error: x509_cert::der::Error) -> Self {
        Self::Certificate(error.to_string())
    }
}

impl From<x509_cert::spki::Error> for SimulationError {
    fn from(error: x509_cert::spki::Error) -> Self {
        Self::Certificate(error.to_string())
    }
}

/// What the simulated guest was launched with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedLaunch {
    /// The launch measurement (see [`simulated_measurement`]).
    pub measurement: Measurement,
    /// HOST_DATA (see [`HostData::of_launch`]).
    pub host_data: HostData,
    /// The SNP guest policy bits (debug is bit 19, migration agent bit 18).
    pub guest_policy: u64,
    /// The PLATFORM_INFO the platform reports (bit 0: SMT enabled).
    pub platform_info: u64,
    /// The VMPL the report is requested from.
    pub vmpl: u32,
}

impl SimulatedLaunch {
    /// SMT allowed, debug and migration agent disallowed, ABI 0.0.
    pub const DEFAULT_GUEST_POLICY: u64 = 0x3_0000;
    /// SMT enabled, nothing else: the platform info of the shared Milan test data.
    pub const DEFAULT_PLATFORM_INFO: u64 = 0x1;

    /// The values a report of this launch carries, as a release names them.
    pub fn facts(&self) -> LaunchFacts {
        LaunchFacts {
            measurement: self.measurement,
            host_data: self.host_data,
            guest_policy: self.guest_policy,
            platform_info: self.platform_info,
        }
    }

    /// A launch at VMPL 0 with the default guest policy and platform info.
    pub fn new(measurement: Measurement, host_data: HostData) -> Self {
        Self {
            measurement,
            host_data,
            guest_policy: Self::DEFAULT_GUEST_POLICY,
            platform_info: Self::DEFAULT_PLATFORM_INFO,
            vmpl: 0,
        }
    }
}

/// A SIMULATED AMD SEV-SNP platform: a generated ARK -> ASK -> VCEK chain
/// and a chip id. See the module documentation.
#[derive(Clone)]
pub struct SimulatedPlatform {
    ark: Vec<u8>,
    ask: Vec<u8>,
    ask_key: RsaPrivateKey,
    vcek: Vec<u8>,
    vcek_key: p384::ecdsa::SigningKey,
    chip_id: [u8; 64],
    product_line: ProductLine,
    tcb: Tcb,
}

impl std::fmt::Debug for SimulatedPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SimulatedPlatform(SIMULATED, {:?}, tcb {:?})",
            self.product_line, self.tcb
        )
    }
}

impl SimulatedPlatform {
    /// Generates a platform from the operating system's randomness.
    pub fn generate(tcb: Tcb) -> Result<Self, SimulationError> {
        Self::generate_with(&mut OsRng, tcb)
    }

    /// Generates the same platform for the same seed, so that several
    /// development processes can share one simulated root.
    pub fn from_seed(seed: [u8; 32], tcb: Tcb) -> Result<Self, SimulationError> {
        Self::generate_with(&mut ChaCha20Rng::from_seed(seed), tcb)
    }

    /// The platform of `seed` at `tcb`, read from `dir` if an earlier call
    /// stored it there, else derived with [`SimulatedPlatform::from_seed`]
    /// (two RSA-4096 key generations, seconds) and stored.
    ///
    /// The file, `simulated-platform-<SHA-256 of seed and TCB>.der`, holds
    /// the chain, the ASK's and the VCEK's private keys and the chip id.
    /// They are no secret: the seed is public and derives them. A file that
    /// does not parse, names another seed or TCB, or whose keys do not match
    /// its certificates is derived again and replaced.
    ///
    /// # Errors
    /// The derivation failed, or `dir` could not be read or written.
    pub fn cached(
        seed: [u8; 32],
        tcb: Tcb,
        dir: &Path,
    ) -> Result<(Self, RootSource), SimulationError> {
        let mut hasher = Sha256::new();
        hasher.update(seed);
        hasher.update([tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode]);
        let digest: [u8; 32] = hasher.finalize().into();
        let path = dir.join(format!("simulated-platform-{}.der", hex::encode(digest)));
        cached_at(
            &path,
            |bytes| Self::decode(&digest, tcb, bytes),
            || Self::from_seed(seed, tcb),
            |platform| platform.encode(&digest),
        )
    }

    /// `digest || ARK || ASK || ASK key (PKCS#8) || VCEK || VCEK key || chip id`, each length-prefixed.
    fn encode(&self, digest: &[u8; 32]) -> Vec<u8> {
        use rsa::pkcs8::EncodePrivateKey;
        let mut bytes = digest.to_vec();
        let ask_key = self
            .ask_key
            .to_pkcs8_der()
            .map(|der| der.as_bytes().to_vec())
            .unwrap_or_default();
        for field in [
            &self.ark[..],
            &self.ask,
            &ask_key,
            &self.vcek,
            &self.vcek_key.to_bytes(),
            &self.chip_id,
        ] {
            put_field(&mut bytes, field);
        }
        bytes
    }

    /// The platform in `bytes` if they name `digest`, parse, the ARK signs
    /// itself and the ASK, the ASK the VCEK, and both keys are their certificates'.
    fn decode(digest: &[u8; 32], tcb: Tcb, bytes: &[u8]) -> Option<Self> {
        use rsa::pkcs8::DecodePrivateKey;
        use sev::certs::snp::Verifiable;
        let mut rest = bytes.strip_prefix(digest.as_slice())?;
        let mut next = || take_field(&mut rest);
        let (ark, ask, ask_key, vcek, vcek_key, chip_id) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        let root = SimulatedRoot::checked(ark, ask)?;
        let (_, ask_cert) = root.certificates().ok()?;
        let vcek_cert = sev::certs::snp::Certificate::from_der(vcek).ok()?;
        (&ask_cert, &vcek_cert).verify().ok()?;
        let ask_key = RsaPrivateKey::from_pkcs8_der(ask_key).ok()?;
        let vcek_key = p384::ecdsa::SigningKey::from_slice(vcek_key).ok()?;
        let public_key_of = |der: &[u8]| {
            use x509_cert::der::Decode;
            x509_cert::Certificate::from_der(der)
                .ok()
                .map(|cert| cert.tbs_certificate.subject_public_key_info)
        };
        let ask_spki = SubjectPublicKeyInfoOwned::from_key(ask_key.to_public_key()).ok()?;
        let vcek_spki = SubjectPublicKeyInfoOwned::try_from(
            vcek_key
                .verifying_key()
                .to_public_key_der()
                .ok()?
                .as_bytes(),
        )
        .ok()?;
        if public_key_of(ask)? != ask_spki || public_key_of(vcek)? != vcek_spki {
            return None;
        }
        Some(Self {
            ark: root.ark,
            ask: root.ask,
            ask_key,
            vcek: vcek.to_vec(),
            vcek_key,
            chip_id: chip_id.try_into().ok()?,
            product_line: ProductLine::Milan,
            tcb: Tcb { fmc: None, ..tcb },
        })
    }

    fn generate_with(rng: &mut impl CryptoRngCore, tcb: Tcb) -> Result<Self, SimulationError> {
        let (SimulatedRoot { ark, ask }, ask_key) = generate_root(rng)?;
        let mut chip_id = [0u8; 64];
        rng.fill_bytes(&mut chip_id);
        let product_line = ProductLine::Milan;
        let tcb = Tcb { fmc: None, ..tcb };
        let (vcek, vcek_key) = issue_vcek(rng, &ask_key, &chip_id, product_line, &tcb)?;
        Ok(Self {
            ark,
            ask,
            ask_key,
            vcek,
            vcek_key,
            chip_id,
            product_line,
            tcb,
        })
    }

    /// The same chip and chain after a firmware change: a new VCEK for `tcb`.
    pub fn with_tcb(&self, tcb: Tcb) -> Result<Self, SimulationError> {
        self.on_product_line(self.product_line, tcb)
    }

    /// A chip of another product line under the same simulated chain: its
    /// CPUID, product name, chip id length and TCB layout (Turin's FMC
    /// level, kept only there) are that line's.
    pub fn on_product_line(&self, line: ProductLine, tcb: Tcb) -> Result<Self, SimulationError> {
        let tcb = Tcb {
            fmc: if line.has_fmc() {
                Some(tcb.fmc.unwrap_or(0))
            } else {
                None
            },
            ..tcb
        };
        let mut chip_id = self.chip_id;
        if line == ProductLine::Turin {
            // Turin chip ids are 8 bytes, zero-padded in the report.
            chip_id[8..].fill(0);
        }
        let (vcek, vcek_key) = issue_vcek(&mut OsRng, &self.ask_key, &chip_id, line, &tcb)?;
        Ok(Self {
            ark: self.ark.clone(),
            ask: self.ask.clone(),
            ask_key: self.ask_key.clone(),
            vcek,
            vcek_key,
            chip_id,
            product_line: line,
            tcb,
        })
    }

    /// `anchors` plus this platform's simulated root.
    pub fn pin_in(&self, anchors: TrustAnchors) -> Result<TrustAnchors, SimulationError> {
        self.root().pin_in(anchors)
    }

    /// The public root of this platform's chain: what a verifier pins.
    pub fn root(&self) -> SimulatedRoot {
        SimulatedRoot {
            ark: self.ark.clone(),
            ask: self.ask.clone(),
        }
    }

    /// The certificate table a simulated host would get: VCEK, ASK, ARK.
    pub fn certificates(&self) -> CertTable {
        let mut table = CertTable::new();
        table.insert(CertKind::Vcek, self.vcek.clone());
        table.insert(CertKind::Ask, self.ask.clone());
        table.insert(CertKind::Ark, self.ark.clone());
        table
    }

    /// The TCB this platform reports and its VCEK certifies.
    pub fn tcb(&self) -> Tcb {
        self.tcb
    }

    /// A signed report for `launch` carrying `report_data`.
    pub fn report(
        &self,
        launch: &SimulatedLaunch,
        report_data: &[u8; 64],
    ) -> Result<RawReport, SimulationError> {
        let tcb = TcbVersion::new(
            self.tcb.fmc,
            self.tcb.bootloader,
            self.tcb.tee,
            self.tcb.snp,
            self.tcb.microcode,
        );
        let report_id: [u8; 32] = Sha256::new_with_prefix(self.chip_id)
            .chain_update(launch.measurement)
            .finalize()
            .into();
        let (family, model, stepping) = cpuid(self.product_line);
        let report = AttestationReport {
            version: REPORT_VERSION,
            policy: GuestPolicy::from(launch.guest_policy),
            vmpl: launch.vmpl,
            sig_algo: SIG_ALGO_ECDSA_P384_SHA384,
            current_tcb: tcb,
            plat_info: PlatformInfo::from(launch.platform_info),
            key_info: KeyInfo::from(0),
            report_data: *report_data,
            measurement: launch.measurement.0,
            host_data: launch.host_data.0,
            report_id,
            report_id_ma: [0xFF; 32],
            reported_tcb: tcb,
            cpuid_fam_id: Some(family),
            cpuid_mod_id: Some(model),
            cpuid_step: Some(stepping),
            chip_id: self.chip_id,
            committed_tcb: tcb,
            current: sev::firmware::guest::Version::new(1, 55, 22),
            committed: sev::firmware::guest::Version::new(1, 55, 22),
            launch_tcb: tcb,
            ..AttestationReport::default()
        };
        let mut raw = RawReport::from_bytes(&report.to_bytes()?).map_err(std::io::Error::other)?;
        self.sign(&mut raw);
        Ok(raw)
    }

    /// (Re-)signs `report` with this platform's VCEK, over its current bytes.
    pub fn sign(&self, report: &mut RawReport) {
        use p384::ecdsa::signature::Signer;
        let signature: p384::ecdsa::Signature = self.vcek_key.sign(report.signed_bytes());
        report.set_signature(&signature);
    }

    /// A signed report together with this platform's certificates.
    pub fn evidence(
        &self,
        launch: &SimulatedLaunch,
        report_data: &[u8; 64],
    ) -> Result<Evidence, SimulationError> {
        Ok(Evidence {
            report: self.report(launch, report_data)?,
            certificates: self.certificates(),
        })
    }
}

/// The ARK and ASK certificates of a simulated platform, without any
/// private key: all a verifier needs to pin its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedRoot {
    ark: Vec<u8>,
    ask: Vec<u8>,
}

impl SimulatedRoot {
    /// The root of `SimulatedPlatform::from_seed(seed, _)` (it does not
    /// depend on the TCB). It costs the two RSA-4096 key generations; see
    /// [`SimulatedRoot::cached`] to pay them once.
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, SimulationError> {
        Ok(generate_root(&mut ChaCha20Rng::from_seed(seed))?.0)
    }

    /// `anchors` plus this simulated root.
    pub fn pin_in(&self, anchors: TrustAnchors) -> Result<TrustAnchors, SimulationError> {
        let (ark, ask) = self.certificates()?;
        Ok(anchors.with_simulated(ark, ask))
    }

    fn certificates(
        &self,
    ) -> Result<(sev::certs::snp::Certificate, sev::certs::snp::Certificate), SimulationError> {
        let parse = |der: &[u8]| {
            sev::certs::snp::Certificate::from_der(der)
                .map_err(|e| SimulationError::Certificate(e.to_string()))
        };
        Ok((parse(&self.ark)?, parse(&self.ask)?))
    }

    /// The root of `seed`, read from `dir` if an earlier call stored it
    /// there, else derived with [`SimulatedRoot::from_seed`] and stored.
    ///
    /// The file, `simulated-root-<SHA-256 of the seed>.der`, also carries
    /// the seed's digest; a file that names another seed, does not parse,
    /// or whose ARK does not sign itself and the ASK is derived again and
    /// replaced, so a damaged cache never pins anything but a chain this
    /// seed's digest was stored with. Whoever can write `dir` can replace
    /// the root; the simulated root protects nothing anyway (a policy
    /// accepts it only with `allow_simulated = true`), so the cache only
    /// spares the key generations.
    ///
    /// # Errors
    /// The derivation failed, or `dir` could not be read or written.
    pub fn cached(seed: [u8; 32], dir: &Path) -> Result<(Self, RootSource), SimulationError> {
        let digest: [u8; 32] = Sha256::digest(seed).into();
        let path = dir.join(format!("simulated-root-{}.der", hex::encode(digest)));
        cached_at(
            &path,
            |bytes| Self::decode(&digest, bytes),
            || Self::from_seed(seed),
            |root| root.encode(&digest),
        )
    }

    /// `seed digest || ARK || ASK`, each length-prefixed.
    fn encode(&self, seed_digest: &[u8; 32]) -> Vec<u8> {
        let mut bytes = seed_digest.to_vec();
        put_field(&mut bytes, &self.ark);
        put_field(&mut bytes, &self.ask);
        bytes
    }

    /// The root in `bytes` if they name `seed_digest`, parse, and the ARK
    /// signs itself and the ASK.
    fn decode(seed_digest: &[u8; 32], bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes.strip_prefix(seed_digest.as_slice())?;
        Self::checked(take_field(&mut rest)?, take_field(&mut rest)?)
    }

    /// The root of these certificates if they parse and the ARK signs itself and the ASK.
    fn checked(ark: &[u8], ask: &[u8]) -> Option<Self> {
        use sev::certs::snp::Verifiable;
        let root = Self {
            ark: ark.to_vec(),
            ask: ask.to_vec(),
        };
        let (ark, ask) = root.certificates().ok()?;
        (&ark, &ark).verify().ok()?;
        (&ark, &ask).verify().ok()?;
        Some(root)
    }
}

/// `path`'s value if `decode` accepts the file, else `derive`d and stored
/// there (written aside and renamed, so a reader never sees half a file).
fn cached_at<T>(
    path: &Path,
    decode: impl FnOnce(&[u8]) -> Option<T>,
    derive: impl FnOnce() -> Result<T, SimulationError>,
    encode: impl FnOnce(&T) -> Vec<u8>,
) -> Result<(T, RootSource), SimulationError> {
    let cache_error = |source| SimulationError::Cache {
        path: path.to_owned(),
        source,
    };
    let source = match std::fs::read(path) {
        Ok(bytes) => match decode(&bytes) {
            Some(value) => return Ok((value, RootSource::Cache)),
            None => RootSource::Rederived,
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => RootSource::Derived,
        Err(error) => return Err(cache_error(error)),
    };
    let value = derive()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(cache_error)?;
    }
    let partial = path.with_extension(format!("der.{}.partial", std::process::id()));
    std::fs::write(&partial, encode(&value)).map_err(cache_error)?;
    std::fs::rename(&partial, path).map_err(cache_error)?;
    Ok((value, source))
}

/// Appends `field` with a u32 big-endian length prefix.
fn put_field(bytes: &mut Vec<u8>, field: &[u8]) {
    // Certificates and keys of a few kilobytes always fit.
    bytes.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
    bytes.extend_from_slice(field);
}

/// Takes one field written by [`put_field`] off the front of `rest`.
fn take_field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (length, after) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
    let field = after.get(..length)?;
    *rest = after.get(length..)?;
    Some(field)
}

/// Where [`SimulatedRoot::cached`] took the root from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// Read from the cache: nothing was derived.
    Cache,
    /// Derived: there was no cache file.
    Derived,
    /// Derived again: the cache file was damaged or named another seed.
    Rederived,
}

/// A root certificate chain (ARK self-signed, ASK signed by it) and the
/// ASK's private key.
fn generate_root(
    rng: &mut impl CryptoRngCore,
) -> Result<(SimulatedRoot, RsaPrivateKey), SimulationError> {
    let ark_key = RsaPrivateKey::new(rng, RSA_BITS)?;
    let ask_key = RsaPrivateKey::new(rng, RSA_BITS)?;
    let ark_name = Name::from_str("CN=SIMULATED-ARK-Milan,O=Cloister development (not AMD)")?;
    let ark_spki = SubjectPublicKeyInfoOwned::from_key(ark_key.to_public_key())?;
    let ask_spki = SubjectPublicKeyInfoOwned::from_key(ask_key.to_public_key())?;
    let ark = issue(
        rng,
        &ark_key,
        &ark_name,
        ark_name.clone(),
        ark_spki,
        Vec::new(),
        1,
    )?;
    let ask = issue(
        rng,
        &ark_key,
        &ark_name,
        ask_name()?,
        ask_spki,
        Vec::new(),
        2,
    )?;
    Ok((SimulatedRoot { ark, ask }, ask_key))
}

fn ask_name() -> Result<Name, SimulationError> {
    Ok(Name::from_str(
        "CN=SIMULATED-ASK-Milan,O=Cloister development (not AMD)",
    )?)
}

/// CPUID family, model and stepping of a chip of `line`.
fn cpuid(line: ProductLine) -> (u8, u8, u8) {
    match line {
        ProductLine::Milan => (0x19, 0x01, 0x01),
        ProductLine::Genoa => (0x19, 0x11, 0x01),
        ProductLine::Turin => (0x1A, 0x02, 0x01),
    }
}

/// The product name AMD writes into a VCEK of `line`.
fn product_name(line: ProductLine) -> &'static str {
    match line {
        ProductLine::Milan => "Milan-B0",
        ProductLine::Genoa => "Genoa-B1",
        ProductLine::Turin => "Turin",
    }
}

/// A VCEK for `chip_id` (8 bytes on Turin) of `line` at `tcb`, with AMD's
/// extensions, signed by the ASK.
fn issue_vcek(
    rng: &mut impl CryptoRngCore,
    ask_key: &RsaPrivateKey,
    chip_id: &[u8; 64],
    line: ProductLine,
    tcb: &Tcb,
) -> Result<(Vec<u8>, p384::ecdsa::SigningKey), SimulationError> {
    let key = p384::ecdsa::SigningKey::random(rng);
    let spki =
        SubjectPublicKeyInfoOwned::try_from(key.verifying_key().to_public_key_der()?.as_bytes())?;
    let extension = |id, value: Vec<u8>| -> Result<Extension, SimulationError> {
        Ok(Extension {
            extn_id: id,
            critical: false,
            extn_value: OctetString::new(value)?,
        })
    };
    let hw_id = if line == ProductLine::Turin {
        &chip_id[..8]
    } else {
        &chip_id[..]
    };
    let mut extensions = vec![
        extension(
            oid::PRODUCT_NAME,
            Ia5String::new(product_name(line))?.to_der()?,
        )?,
        extension(oid::BOOTLOADER, level_der(tcb.bootloader))?,
        extension(oid::TEE, level_der(tcb.tee))?,
        extension(oid::SNP, level_der(tcb.snp))?,
        extension(oid::MICROCODE, level_der(tcb.microcode))?,
        extension(oid::HW_ID, hw_id.to_vec())?,
    ];
    if let Some(fmc) = tcb.fmc {
        extensions.push(extension(oid::FMC, level_der(fmc))?);
    }
    let subject = Name::from_str("CN=SIMULATED-VCEK,O=Cloister development (not AMD)")?;
    let vcek = issue(rng, ask_key, &ask_name()?, subject, spki, extensions, 3)?;
    Ok((vcek, key))
}

/// A DER certificate signed with RSA-PSS/SHA-384 by `issuer_key`.
fn issue(
    rng: &mut impl CryptoRngCore,
    issuer_key: &RsaPrivateKey,
    issuer: &Name,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
    serial: u8,
) -> Result<Vec<u8>, SimulationError> {
    let algorithm = rsa::pss::get_default_pss_signature_algo_id::<Sha384>()?;
    let tbs_certificate = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[serial])?,
        signature: algorithm.clone(),
        issuer: issuer.clone(),
        validity: Validity::from_now(VALIDITY)?,
        subject,
        subject_public_key_info,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let signer = rsa::pss::BlindedSigningKey::<Sha384>::new(issuer_key.clone());
    let signature = signer.sign_with_rng(rng, &tbs_certificate.to_der()?);
    let certificate = x509_cert::Certificate {
        tbs_certificate,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature.to_bytes())?,
    };
    Ok(certificate.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::der::Decode;

    /// The public keys of a root's ARK and ASK (the certificates' validity
    /// starts when they are issued, so two derivations differ there).
    fn keys(root: &SimulatedRoot) -> Vec<Vec<u8>> {
        [&root.ark, &root.ask]
            .map(|der| {
                x509_cert::Certificate::from_der(der)
                    .and_then(|cert| cert.tbs_certificate.subject_public_key_info.to_der())
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .to_vec()
    }

    fn cache_file(dir: &Path, seed: [u8; 32]) -> std::path::PathBuf {
        let digest = hex::encode(Sha256::digest(seed));
        dir.join(format!("simulated-root-{digest}.der"))
    }

    #[test]
    fn the_simulated_root_is_derived_once_and_a_damaged_cache_is_derived_again() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cached =
            |seed| SimulatedRoot::cached(seed, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let (root, source) = cached([7; 32]);
        assert_eq!(source, RootSource::Derived);
        let (again, source) = cached([7; 32]);
        assert_eq!(source, RootSource::Cache, "the second call reads the cache");
        assert_eq!(again, root);

        // A flipped bit in the ASK's signature: derived again, same keys.
        let path = cache_file(dir.path(), [7; 32]);
        let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let (rederived, source) = cached([7; 32]);
        assert_eq!(source, RootSource::Rederived);
        assert_eq!(keys(&rederived), keys(&root));
        assert_eq!(
            cached([7; 32]).1,
            RootSource::Cache,
            "the cache was repaired"
        );

        // Another seed's file under this seed's name: its digest gives it away.
        std::fs::copy(&path, cache_file(dir.path(), [8; 32])).unwrap_or_else(|e| panic!("{e}"));
        let (other, source) = cached([8; 32]);
        assert_eq!(source, RootSource::Rederived);
        assert_ne!(keys(&other), keys(&root));
        let platform = SimulatedPlatform::from_seed([8; 32], DEVELOPMENT_TCB)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            keys(&platform.root()),
            keys(&other),
            "the platform's own root"
        );
    }

    #[test]
    fn the_simulated_platform_is_derived_once_and_signs_as_the_derived_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cached = || {
            SimulatedPlatform::cached([7; 32], DEVELOPMENT_TCB, dir.path())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let (derived, source) = cached();
        assert_eq!(source, RootSource::Derived);
        let (read, source) = cached();
        assert_eq!(source, RootSource::Cache, "the second call reads the cache");
        assert!(
            read.encode(&[0; 32]) == derived.encode(&[0; 32]),
            "the cache holds the derived platform"
        );

        // A VCEK key that is not the VCEK certificate's: derived again.
        let file = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.to_string_lossy().contains("simulated-platform-"))
            .unwrap_or_else(|| panic!("no cache file"));
        let mut bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
        let own_key = read.vcek_key.to_bytes();
        let start = bytes
            .windows(own_key.len())
            .position(|window| window == own_key.as_slice())
            .unwrap_or_else(|| panic!("the key is in the file"));
        // Another valid P-384 scalar.
        bytes[start..start + own_key.len()].fill(1);
        std::fs::write(&file, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let (repaired, source) = cached();
        assert_eq!(source, RootSource::Rederived);
        // Derived again: the same keys (certificates carry the derivation time).
        assert_eq!(keys(&repaired.root()), keys(&derived.root()));
        assert!(repaired.vcek_key == derived.vcek_key, "the seed's VCEK key");
    }

    #[test]
    fn a_truncated_or_foreign_cache_does_not_decode() {
        let platform = SimulatedPlatform::from_seed([9; 32], DEVELOPMENT_TCB)
            .unwrap_or_else(|e| panic!("{e}"));
        let digest = [1; 32];
        let bytes = platform.root().encode(&digest);
        assert_eq!(
            SimulatedRoot::decode(&digest, &bytes),
            Some(platform.root())
        );
        assert_eq!(
            SimulatedRoot::decode(&[2; 32], &bytes),
            None,
            "another seed"
        );
        for length in [0, 31, 32, 36, 100, bytes.len() - 1] {
            assert_eq!(
                SimulatedRoot::decode(&digest, &bytes[..length]),
                None,
                "{length} bytes"
            );
        }
        // The ASK and the ARK swapped: the ASK does not sign itself.
        let swapped = SimulatedRoot {
            ark: platform.root().ask,
            ask: platform.root().ark,
        };
        assert_eq!(
            SimulatedRoot::decode(&digest, &swapped.encode(&digest)),
            None
        );
    }

    #[test]
    fn every_input_changes_the_simulated_measurement() {
        let base = simulated_measurement(&[1; 32], &[[2; 32], [3; 32]], &HostData([4; 32]));
        assert_eq!(
            base,
            simulated_measurement(&[1; 32], &[[3; 32], [2; 32]], &HostData([4; 32])),
            "plugin order"
        );
        assert_ne!(
            base,
            simulated_measurement(&[9; 32], &[[2; 32], [3; 32]], &HostData([4; 32])),
            "host binary"
        );
        assert_ne!(
            base,
            simulated_measurement(&[1; 32], &[[2; 32], [9; 32]], &HostData([4; 32])),
            "plugin digest"
        );
        assert_ne!(
            base,
            simulated_measurement(&[1; 32], &[[2; 32]], &HostData([4; 32])),
            "plugin removed"
        );
        assert_ne!(
            base,
            simulated_measurement(&[1; 32], &[[2; 32], [3; 32]], &HostData([9; 32])),
            "host data"
        );
    }
}
