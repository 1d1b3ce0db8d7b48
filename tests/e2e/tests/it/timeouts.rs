//! The client waits longer than the relay in front of the gateway, so a
//! request that is merely slow fails at the innermost hop that gave up, with
//! that hop's error, not with a bare client timeout.

use std::time::Duration;

use cloister_client::ClientConfig;
use cloister_relay::RelayConfig;

/// The relay's own work around the exchange (reading, passing the answer back).
const RELAY_WORK: Duration = Duration::from_secs(5);

#[test]
fn the_client_outwaits_the_relay() {
    let client = ClientConfig::default().timeout;
    let relay = Duration::from_millis(RelayConfig::default().timeout_ms);
    assert!(
        client >= relay + RELAY_WORK,
        "the client waits {client:?} for a relay that waits {relay:?}"
    );
}
