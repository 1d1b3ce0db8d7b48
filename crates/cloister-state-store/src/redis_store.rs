//! The Redis backend: what a fleet of replicas shares.
//!
//! Keys are `{prefix}{namespace}:{key}` (binary-safe). A spend-once entry
//! is `SET key 1 NX EXAT expires_at`: set only if absent, with the absolute
//! expiry Redis enforces itself. A counter is `{prefix}{namespace}:{name}:{window}`,
//! counted and bounded by one Lua script (atomic on the server) that sets
//! its expiry to the window's end.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{Inserted, StateError};

/// How long one command may take before the request is refused.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Counts one unless the limit is reached: KEYS[1] counter, ARGV[1] limit,
/// ARGV[2] the window's end (Unix seconds). Returns 1 if counted, 0 if not.
const TAKE: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
";

/// Gives one back if the counter exists and is above zero.
const REFUND: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then redis.call('DECR', KEYS[1]) end
return 0
";

#[derive(Clone)]
pub(crate) struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    take: redis::Script,
    refund: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (a reconnecting connection: a Redis that comes back is used
    /// again) and refuses a Redis whose `maxmemory-policy` may evict keys.
    /// A Redis that does not allow `CONFIG GET` (some managed services) is
    /// accepted: its operator must set `noeviction`.
    pub(crate) async fn connect(url: &str, prefix: &str) -> Result<Self, StateError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let mut connection = ConnectionManager::new_with_config(client, config).await?;
        let policy: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut connection)
            .await;
        if let Ok(pair) = policy
            && let Some(policy) = pair.get(1)
            && policy != "noeviction"
        {
            return Err(StateError::Evicting(policy.clone()));
        }
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            take: redis::Script::new(TAKE),
            refund: redis::Script::new(REFUND),
        })
    }

    fn key(&self, namespace: &str, parts: &[&[u8]]) -> Vec<u8> {
        let mut key = format!("{}{namespace}", self.prefix).into_bytes();
        for part in parts {
            key.push(b':');
            key.extend_from_slice(part);
        }
        key
    }

    pub(crate) async fn insert(
        &self,
        namespace: &'static str,
        key: &[u8],
        expires_at: u64,
    ) -> Result<Inserted, StateError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(namespace, &[key]))
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(expires_at)
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(match set {
            Some(_) => Inserted::Fresh,
            None => Inserted::Present,
        })
    }

    /// Counts the namespace's keys with `SCAN` (glob characters of the
    /// prefix escaped).
    pub(crate) async fn count(&self, namespace: &'static str) -> Result<u64, StateError> {
        let mut pattern = Vec::new();
        for byte in self.key(namespace, &[b""]) {
            if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(byte);
        }
        pattern.push(b'*');
        let mut connection = self.connection.clone();
        let (mut cursor, mut count) = (0u64, 0u64);
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut connection)
                .await?;
            count += keys.len() as u64;
            if next == 0 {
                return Ok(count);
            }
            cursor = next;
        }
    }

    pub(crate) async fn take(
        &self,
        namespace: &'static str,
        name: &str,
        window: u64,
        limit: u32,
        expires_at: u64,
    ) -> Result<bool, StateError> {
        let counted: u8 = self
            .take
            .key(self.key(namespace, &[name.as_bytes(), window.to_string().as_bytes()]))
            .arg(limit)
            .arg(expires_at)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(counted == 1)
    }

    pub(crate) async fn refund(
        &self,
        namespace: &'static str,
        name: &str,
        window: u64,
    ) -> Result<(), StateError> {
        let _: u8 = self
            .refund
            .key(self.key(namespace, &[name.as_bytes(), window.to_string().as_bytes()]))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(())
    }
}
