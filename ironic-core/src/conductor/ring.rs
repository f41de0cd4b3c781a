//! A consistent hash ring: which conductor owns a node.
//!
//! As Ironic's (tooz's) ring: every live conductor gets `partitions` points on a
//! 64-bit circle (Ironic: `2^hash_partition_exponent` = 32), placed by hashing
//! `"<host>/<i>"`; a node belongs to the first point at or after the hash of its
//! UUID. When a conductor joins or leaves, only the nodes next to its points move.
//!
//! The hash is 64-bit FNV-1a over the bytes followed by MurmurHash3's 64-bit
//! finalizer (so that near-identical inputs such as `"c1/0"` and `"c1/1"` land far
//! apart): fixed across builds, platforms and versions (unlike `std::hash`), so
//! every conductor computes the same ring from the same member list.

/// Ironic's default: `2^[conductor]hash_partition_exponent` with exponent 5.
pub const DEFAULT_PARTITIONS: usize = 32;

/// A position on the ring.
fn point(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The ring over a set of hosts. Cheap to query (a binary search); rebuilt when
/// the set changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashRing {
    /// `(point, index into hosts)`, sorted by point.
    points: Vec<(u64, usize)>,
    hosts: Vec<String>,
}

impl HashRing {
    /// A ring over `hosts` (duplicates ignored), `partitions` points each (at least 1).
    pub fn new<I, S>(hosts: I, partitions: usize) -> HashRing
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut hosts: Vec<String> = hosts.into_iter().map(Into::into).collect();
        hosts.sort();
        hosts.dedup();
        let partitions = partitions.max(1);
        let mut points = Vec::with_capacity(hosts.len() * partitions);
        for (i, h) in hosts.iter().enumerate() {
            for p in 0..partitions {
                points.push((point(format!("{h}/{p}").as_bytes()), i));
            }
        }
        // Ties (astronomically unlikely) are broken by host name, so every
        // conductor sorts the same way.
        points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| hosts[a.1].cmp(&hosts[b.1])));
        HashRing { points, hosts }
    }

    /// The hosts on the ring, sorted.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Whether the ring has no host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The host owning `key` (a node's UUID bytes), or `None` on an empty ring.
    pub fn owner(&self, key: &[u8]) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let h = point(key);
        let i = self.points.partition_point(|(p, _)| *p < h);
        let (_, host) = self.points[i % self.points.len()];
        Some(&self.hosts[host])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn keys(n: usize) -> Vec<[u8; 16]> {
        // Deterministic "UUIDs": the test measures the ring, not the generator.
        (0..n as u64)
            .map(|i| {
                *uuid::Uuid::from_u64_pair(point(&i.to_be_bytes()), point(&i.to_le_bytes()))
                    .as_bytes()
            })
            .collect()
    }

    fn shares(ring: &HashRing, keys: &[[u8; 16]]) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for k in keys {
            *m.entry(ring.owner(k).unwrap().to_owned()).or_default() += 1;
        }
        m
    }

    #[test]
    fn every_key_has_exactly_one_owner_and_all_rings_agree() {
        let a = HashRing::new(["c3", "c1", "c2"], DEFAULT_PARTITIONS);
        let b = HashRing::new(
            vec!["c2".to_owned(), "c3".into(), "c1".into(), "c1".into()],
            32,
        );
        assert_eq!(
            a, b,
            "the order and duplicates of the member list do not matter"
        );
        for k in keys(1000) {
            assert_eq!(a.owner(&k), b.owner(&k));
        }
        assert_eq!(HashRing::new(Vec::<String>::new(), 32).owner(b"x"), None);
        assert_eq!(HashRing::new(["only"], 32).owner(b"x"), Some("only"));
    }

    #[test]
    fn the_hash_is_fixed() {
        // Pinned: a change here would move every node on upgrade.
        assert_eq!(point(b"conductor-1/0"), 0xd3e6_b069_6292_0c45);
        let ring = HashRing::new(["a", "b", "c"], 32);
        assert_eq!(ring.owner(b"\x00\x01\x02"), Some("c"));
    }

    #[test]
    fn a_leaving_conductor_only_moves_its_own_nodes() {
        let keys = keys(10_000);
        let before = HashRing::new(["c1", "c2", "c3", "c4"], 32);
        let after = HashRing::new(["c1", "c2", "c4"], 32);
        for k in &keys {
            let was = before.owner(k).unwrap();
            if was != "c3" {
                assert_eq!(
                    after.owner(k),
                    Some(was),
                    "a node of a live conductor moved"
                );
            }
        }
        let joined = HashRing::new(["c1", "c2", "c3", "c4", "c5"], 32);
        let moved = keys
            .iter()
            .filter(|k| before.owner(k.as_slice()) != joined.owner(k.as_slice()))
            .count();
        for k in &keys {
            let now = joined.owner(k).unwrap();
            if now != "c5" {
                assert_eq!(
                    before.owner(k),
                    Some(now),
                    "only nodes going to the new one move"
                );
            }
        }
        // About a fifth of the nodes move to the fifth conductor.
        assert!((1000..3500).contains(&moved), "{moved} of 10000 moved");
    }

    /// The balance of Ironic's 32 partitions per conductor over 10,000 nodes, and
    /// of more partitions. Printed with `--nocapture`; the bounds are loose ones
    /// that a correct ring meets with these fixed inputs.
    #[test]
    fn balance() {
        let keys = keys(10_000);
        for (conductors, partitions) in [(3, 32), (3, 128), (10, 32), (10, 128)] {
            let hosts: Vec<String> = (1..=conductors).map(|i| format!("conductor-{i}")).collect();
            let ring = HashRing::new(hosts, partitions);
            let s = shares(&ring, &keys);
            assert_eq!(s.len(), conductors, "every conductor gets nodes");
            let ideal = keys.len() as f64 / conductors as f64;
            let max = *s.values().max().unwrap() as f64 / ideal;
            let min = *s.values().min().unwrap() as f64 / ideal;
            println!(
                "{conductors} conductors x {partitions} partitions, 10000 nodes: \
                 fewest {:.0}% / most {:.0}% of an even share",
                min * 100.0,
                max * 100.0
            );
            assert!(min > 0.5 && max < 1.6, "{s:?}");
        }
    }
}
