//! The redb backend: the contract, capacity, and a file that outlives its process.

use cloister_state_store::{Inserted, StateConfig, StateError, StateStore, Taken};

use crate::contract::{self, now};

async fn in_memory() -> StateStore {
    StateStore::in_memory().expect("in-memory store")
}

#[tokio::test]
async fn redb_spends_once() {
    contract::spends_once(&in_memory().await).await;
}

#[tokio::test]
async fn redb_forgets_after_expiry() {
    contract::forgets_after_expiry(&in_memory().await).await;
}

#[tokio::test]
async fn redb_counts_per_window() {
    contract::counts_per_window(&in_memory().await).await;
}

#[tokio::test]
async fn redb_refuses_when_full_until_entries_expire() {
    let store = in_memory().await;
    let set = store.once_set("spent", 2);
    let other = store.once_set("replay", 1);
    set.insert(b"1", 100, 10).await.expect("first");
    set.insert(b"2", 50, 10).await.expect("second");
    assert!(matches!(
        set.insert(b"3", 100, 10).await,
        Err(StateError::Full {
            namespace: "spent",
            capacity: 2
        })
    ));
    // Capacity is per namespace.
    assert_eq!(
        other.insert(b"3", 100, 10).await.ok(),
        Some(Inserted::Fresh)
    );
    // "2" expires at 50: room again, and "1" is still remembered.
    assert_eq!(set.insert(b"3", 100, 50).await.ok(), Some(Inserted::Fresh));
    assert_eq!(
        set.insert(b"1", 100, 60).await.ok(),
        Some(Inserted::Present)
    );
    assert!(matches!(
        set.insert(b"4", 100, 60).await,
        Err(StateError::Full { .. })
    ));
}

#[tokio::test]
async fn redb_state_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let config = StateConfig::redb(dir.path().join("state.redb"));
    let at = now();
    let window_start = (at / 3_600 + 1) * 3_600;
    {
        let store = StateStore::open(&config).await.expect("open");
        let set = store.once_set("spent", 10);
        assert_eq!(
            set.insert(b"k", at + 600, at).await.ok(),
            Some(Inserted::Fresh)
        );
        let counters = store.counters("issued", 1, 3_600);
        assert_eq!(
            counters.take("a", window_start).await.ok(),
            Some(Taken::Granted)
        );
        // A second process could not open the file while this one holds it.
        assert!(StateStore::open(&config).await.is_err());
    }
    let reopened = StateStore::open(&config).await.expect("reopen");
    assert_eq!(
        reopened
            .once_set("spent", 10)
            .insert(b"k", at + 600, at)
            .await
            .ok(),
        Some(Inserted::Present)
    );
    assert!(matches!(
        reopened
            .counters("issued", 1, 3_600)
            .take("a", window_start)
            .await,
        Ok(Taken::Exhausted { .. })
    ));
}

#[test]
fn the_state_table_parses() {
    let redb: StateConfig = toml::from_str("backend = \"redb\"\npath = \"x.redb\"").expect("redb");
    assert_eq!(redb, StateConfig::redb("x.redb"));
    assert!(toml::from_str::<StateConfig>("backend = \"sqlite\"\npath = \"x\"").is_err());
    assert!(toml::from_str::<StateConfig>("backend = \"redb\"").is_err());
}
