//! The Redis backend: the contract, two connections sharing one server, a
//! full or stopped server failing closed, an evicting server refused.

use cloister_state_store::{Inserted, StateConfig, StateError, StateStore};
use cloister_test_support::RedisServer;

use crate::contract::{self, now};

async fn connect(server: &RedisServer, prefix: &str) -> StateStore {
    let config = StateConfig::Redis {
        url: server.url(),
        prefix: prefix.to_owned(),
    };
    StateStore::open(&config).await.expect("connect to redis")
}

#[tokio::test]
async fn redis_spends_once() {
    let server = RedisServer::start(&[]);
    contract::spends_once(&connect(&server, "t:").await).await;
}

#[tokio::test]
async fn redis_forgets_after_expiry() {
    let server = RedisServer::start(&[]);
    contract::forgets_after_expiry(&connect(&server, "t:").await).await;
}

#[tokio::test]
async fn redis_counts_per_window() {
    let server = RedisServer::start(&[]);
    contract::counts_per_window(&connect(&server, "t:").await).await;
}

#[tokio::test]
async fn redis_is_shared_by_connections_of_one_prefix_only() {
    let server = RedisServer::start(&[]);
    let (one, two) = (connect(&server, "a:").await, connect(&server, "a:").await);
    let elsewhere = connect(&server, "b:").await;
    let at = now();
    let insert = |store: &StateStore| {
        let set = store.once_set("spent", 10);
        async move { set.insert(b"k", at + 600, at).await.ok() }
    };
    assert_eq!(insert(&one).await, Some(Inserted::Fresh));
    assert_eq!(insert(&two).await, Some(Inserted::Present));
    assert_eq!(insert(&elsewhere).await, Some(Inserted::Fresh));
}

#[tokio::test]
async fn redis_down_or_full_fails_closed() {
    let mut server =
        RedisServer::start(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let store = connect(&server, "t:").await;
    let set = store.once_set("spent", u64::MAX);
    let at = now();
    let mut refused = None;
    for i in 0..200_000u32 {
        match set
            .insert(&[&i.to_be_bytes()[..], &[0; 60]].concat(), at + 600, at)
            .await
        {
            Ok(Inserted::Fresh) => {}
            Ok(Inserted::Present) => panic!("entry {i} seen twice"),
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    let refused = refused.expect("a full Redis refuses writes");
    assert!(refused.to_string().contains("OOM"), "{refused}");

    server.kill();
    let error = set
        .insert(b"after", at + 600, at)
        .await
        .expect_err("a stopped Redis refuses");
    assert!(matches!(error, StateError::Redis(_)), "{error}");
}

#[tokio::test]
async fn a_redis_that_may_evict_is_refused() {
    let server = RedisServer::start(&["--maxmemory", "2mb", "--maxmemory-policy", "volatile-lru"]);
    let config = StateConfig::Redis {
        url: server.url(),
        prefix: String::new(),
    };
    assert!(matches!(
        StateStore::open(&config).await,
        Err(StateError::Evicting(policy)) if policy == "volatile-lru"
    ));
}
