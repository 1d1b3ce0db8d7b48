//! The store's contract on each backend: spend once, expiry, counter
//! windows, capacity, durability across a reopen (redb) and sharing across
//! connections, an unreachable or full server failing closed (Redis).

mod contract;
mod redb;
mod redis;
