//! What every backend must do, run by each backend's module.

use std::time::Duration;

use cloister_state_store::{Inserted, StateStore, Taken};

/// The Unix time now (Redis expires keys by its own clock).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A key is recorded once; other namespaces and keys are separate.
pub async fn spends_once(store: &StateStore) {
    let (spent, replay) = (store.once_set("spent", 100), store.once_set("replay", 100));
    let at = now();
    assert_eq!(
        spent.insert(b"a", at + 600, at).await.ok(),
        Some(Inserted::Fresh)
    );
    assert_eq!(
        spent.insert(b"a", at + 600, at).await.ok(),
        Some(Inserted::Present)
    );
    assert_eq!(
        spent.insert(b"b", at + 600, at).await.ok(),
        Some(Inserted::Fresh)
    );
    assert_eq!(
        replay.insert(b"a", at + 600, at).await.ok(),
        Some(Inserted::Fresh)
    );
    assert_eq!(
        (spent.count().await.ok(), replay.count().await.ok()),
        (Some(2), Some(1))
    );
}

/// An entry is forgotten once its expiry has passed, not before.
pub async fn forgets_after_expiry(store: &StateStore) {
    let set = store.once_set("expiring", 100);
    let at = now();
    assert_eq!(
        set.insert(b"k", at + 2, at).await.ok(),
        Some(Inserted::Fresh)
    );
    assert_eq!(
        set.insert(b"k", at + 2, at + 1).await.ok(),
        Some(Inserted::Present)
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        set.insert(b"k", at + 600, at + 2).await.ok(),
        Some(Inserted::Fresh),
        "expired entries are forgotten"
    );
}

/// Counters are per name and window; a refund gives one back.
pub async fn counts_per_window(store: &StateStore) {
    let counters = store.counters("issued", 2, 100);
    // A window in the near future, so Redis does not expire it at once.
    let start = (now() / 100 + 2) * 100;
    assert_eq!(
        counters.take("a", start + 10).await.ok(),
        Some(Taken::Granted)
    );
    assert_eq!(
        counters.take("a", start + 20).await.ok(),
        Some(Taken::Granted)
    );
    assert_eq!(
        counters.take("a", start + 30).await.ok(),
        Some(Taken::Exhausted { retry_after: 70 })
    );
    assert_eq!(
        counters.take("b", start + 30).await.ok(),
        Some(Taken::Granted)
    );
    counters.refund("a", start + 35).await.expect("refund");
    assert_eq!(
        counters.take("a", start + 40).await.ok(),
        Some(Taken::Granted)
    );
    assert_eq!(
        counters.take("a", start + 50).await.ok(),
        Some(Taken::Exhausted { retry_after: 50 })
    );
    assert_eq!(
        counters.take("a", start + 100).await.ok(),
        Some(Taken::Granted)
    );
}
