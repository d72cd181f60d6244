//! Which shard an item goes to: a hash of its id, stable across builds
//! and Rust versions (std's hasher is not), so an item's shard never
//! changes. Used for the pending-work partitions (src/due.rs) and the
//! profile holder counts (src/item.rs).

/// FNV-1a, 32 bits.
fn fnv1a(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The shard of `key` (an item's id), `0..shards`.
pub fn shard_of(key: &str, shards: u32) -> u32 {
    fnv1a(key) % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_pinned() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(shard_of("a", 16), 12);
        assert_eq!(shard_of("a", 0), 0);
    }
}
