//! Shared fixtures: one SIMULATED platform per test binary, verifiers that
//! accept its evidence for chosen measurements, and an in-memory host whose
//! clock the test moves and whose feature counts its calls. The end-to-end
//! tests (`tests/e2e`) include this module as well.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use cloister_api::{
    BudgetKind, FeatureError, FeatureRequest, FeatureResponse, Message, RequestError,
    SummariseRequest, Summary,
};
use cloister_attestation::{
    AllowList, MeasurementAuthority, Policy, ProductLine, SimulatedLaunch, SimulatedPlatform,
    SimulatedProvider, Tcb, TrustAnchors, Verifier,
};
use cloister_ratls::{
    CallerVerifier, Clock, FeatureService, InMemoryTransport, SessionAttester, SessionConfig,
    SessionTable,
};
use cloister_wire::{HostData, Measurement};

/// The simulated platform's TCB, also the policy minimum.
pub const TCB: Tcb = Tcb {
    fmc: None,
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
};
/// The one launch measurement the verifier accepts.
pub const RELEASED: [u8; 48] = [0x52; 48];
/// The one HOST_DATA the verifier accepts.
pub const HOST_DATA: [u8; 32] = [0x48; 32];

/// The SIMULATED platform (generating its RSA chain is slow, so once).
pub fn platform() -> &'static SimulatedPlatform {
    static PLATFORM: OnceLock<SimulatedPlatform> = OnceLock::new();
    PLATFORM.get_or_init(|| {
        SimulatedPlatform::from_seed([0x5a; 32], TCB).unwrap_or_else(|e| panic!("platform: {e}"))
    })
}

/// A simulated host launched with `measurement` and [`HOST_DATA`].
pub fn provider(measurement: [u8; 48]) -> Arc<SimulatedProvider> {
    Arc::new(SimulatedProvider::new(
        platform().clone(),
        SimulatedLaunch::new(Measurement(measurement), HostData(HOST_DATA)),
    ))
}

/// A verifier pinning the AMD roots and the simulated one, accepting
/// [`RELEASED`] and [`HOST_DATA`]; simulated evidence only if
/// `allow_simulated`.
pub fn verifier(allow_simulated: bool) -> Verifier<AllowList> {
    verifier_accepting(allow_simulated, RELEASED)
}

/// As [`verifier`], accepting `measurement` instead of [`RELEASED`].
pub fn verifier_accepting(allow_simulated: bool, measurement: [u8; 48]) -> Verifier<AllowList> {
    let accepted = AllowList {
        launches: [SimulatedLaunch::new(Measurement(measurement), HostData(HOST_DATA)).facts()]
            .into(),
    };
    verifier_with(allow_simulated, accepted)
}

/// A verifier pinning the AMD roots and the simulated one, with the
/// policy minimum [`TCB`], asking `authority` about measurements (the
/// policy's own list is left empty: the verifier consults only `authority`).
pub fn verifier_with<A: MeasurementAuthority>(allow_simulated: bool, authority: A) -> Verifier<A> {
    let policy = Policy {
        allow_simulated,
        report_versions: 2..=5,
        allowed_vmpls: [0].into(),
        minimum_tcb: [(ProductLine::Milan, TCB)].into(),
        accepted: AllowList::default(),
    };
    let anchors = platform()
        .pin_in(TrustAnchors::amd())
        .unwrap_or_else(|e| panic!("anchors: {e}"));
    Verifier::new(anchors, policy, authority)
}

/// How long the test host keeps an idle session.
pub const IDLE: Duration = Duration::from_secs(30);

/// A feature that counts its calls, so tests can prove it never ran.
#[derive(Default)]
pub struct CountingFeature {
    calls: AtomicUsize,
}

/// What the feature answers every suggest request with: a typed error.
const SUGGEST_ERROR: RequestError = RequestError::Feature(FeatureError::BudgetExceeded {
    budget: BudgetKind::TokensPerCall,
    limit: 16,
    used: 64,
});

impl FeatureService for CountingFeature {
    fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, RequestError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match request.decode::<SummariseRequest>() {
            Ok(summarise) => Ok(FeatureResponse::of(&Summary {
                text: format!(
                    "{} messages, first: {}",
                    summarise.messages.len(),
                    summarise.messages[0].text
                ),
                messages_covered: u32::try_from(summarise.messages.len()).unwrap_or(u32::MAX),
            })),
            Err(_) => Err(SUGGEST_ERROR),
        }
    }
}

impl CountingFeature {
    /// How often the feature ran.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A clock that moves only when the test says so.
pub struct ManualClock(Mutex<Instant>);

impl ManualClock {
    pub fn new() -> Self {
        Self(Mutex::new(Instant::now()))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session table in this process, with its feature and clock.
pub struct Host {
    pub table: Arc<SessionTable>,
    pub feature: Arc<CountingFeature>,
    pub clock: Arc<ManualClock>,
}

impl Host {
    /// A host answering attestation with `attester`, idle timeout [`IDLE`].
    pub fn with(attester: Arc<dyn SessionAttester>, max_sessions: usize) -> Self {
        Self::build(attester, max_sessions, None)
    }

    /// A host launched as [`RELEASED`] that requires callers to attest and
    /// checks them with `callers`.
    pub fn mutual(callers: Arc<dyn CallerVerifier>) -> Self {
        Self::build(provider(RELEASED), 16, Some(callers))
    }

    fn build(
        attester: Arc<dyn SessionAttester>,
        max_sessions: usize,
        callers: Option<Arc<dyn CallerVerifier>>,
    ) -> Self {
        let feature = Arc::new(CountingFeature::default());
        let clock = Arc::new(ManualClock::new());
        let config = SessionConfig {
            idle_timeout_secs: IDLE.as_secs(),
            max_sessions,
        };
        let mut table = SessionTable::with_clock(&config, attester, feature.clone(), clock.clone())
            .unwrap_or_else(|e| panic!("table: {e}"));
        if let Some(callers) = callers {
            table = table.require_caller_attestation(callers);
        }
        Self {
            table: Arc::new(table),
            feature,
            clock,
        }
    }

    /// A host launched as [`RELEASED`] with [`HOST_DATA`].
    pub fn honest() -> Self {
        Self::with(provider(RELEASED), 16)
    }

    pub fn transport(&self) -> InMemoryTransport {
        InMemoryTransport::new(self.table.clone())
    }

    /// How often the feature ran.
    pub fn calls(&self) -> usize {
        self.feature.calls()
    }
}

/// A one-message summarise request.
pub fn summarise(text: &str) -> FeatureRequest {
    FeatureRequest::of(&SummariseRequest {
        messages: vec![Message {
            sender: "ana".into(),
            sent_at: 1_700_000_000,
            text: text.into(),
        }],
        max_words: 0,
    })
}
