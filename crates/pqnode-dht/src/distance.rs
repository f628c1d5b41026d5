//! The XOR metric on the 160-bit id space, and bucket arithmetic.

use pqnode_crypto::{NODE_ID_LEN, NodeId};
use rand::Rng;

/// Number of bits in an id, and of buckets in the routing table.
pub const ID_BITS: usize = NODE_ID_LEN * 8;

/// The XOR distance between two ids. Ordering is numeric (big-endian bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Distance([u8; NODE_ID_LEN]);

impl Distance {
    /// The distance between `a` and `b`: their bytes XORed; symmetric, zero only when `a == b`.
    pub fn between(a: &NodeId, b: &NodeId) -> Self {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        Self(std::array::from_fn(|i| a[i] ^ b[i]))
    }

    /// The bucket a node at this distance belongs in: bucket `i` holds distances in
    /// `[2^i, 2^(i+1))`, so bucket 159 is the far half of the space. `None` for distance zero
    /// (ourselves).
    pub fn bucket_index(&self) -> Option<u8> {
        let leading_zeros = self.leading_zeros();
        // ID_BITS is 160, which fits in u8 arithmetic below.
        (leading_zeros < ID_BITS).then(|| (ID_BITS - 1 - leading_zeros) as u8)
    }

    fn leading_zeros(&self) -> usize {
        let mut zeros = 0;
        for byte in self.0 {
            if byte != 0 {
                return zeros + byte.leading_zeros() as usize;
            }
            zeros += 8;
        }
        zeros
    }
}

/// A uniformly random id whose distance from `local` falls in bucket `index`.
pub fn random_id_in_bucket(local: &NodeId, index: u8, rng: &mut impl Rng) -> NodeId {
    let mut distance = [0u8; NODE_ID_LEN];
    rng.fill_bytes(&mut distance);
    let bit = usize::from(index).min(ID_BITS - 1);
    let top_byte = NODE_ID_LEN - 1 - bit / 8;
    for byte in distance.iter_mut().take(top_byte) {
        *byte = 0;
    }
    // Keep the bits below `bit` in the top byte, force `bit` itself to one.
    let bit_in_byte = bit % 8;
    let keep_mask = ((1u16 << bit_in_byte) - 1) as u8;
    if let Some(byte) = distance.get_mut(top_byte) {
        *byte = (*byte & keep_mask) | (1 << bit_in_byte);
    }
    let local = local.as_bytes();
    NodeId::from_bytes(std::array::from_fn(|i| local[i] ^ distance[i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    #[test]
    fn self_has_no_bucket_and_extremes_land_at_the_ends() {
        let zero = NodeId::from_bytes([0; 20]);
        assert_eq!(Distance::between(&zero, &zero).bucket_index(), None);
        let mut far = [0u8; 20];
        far[0] = 0x80;
        assert_eq!(
            Distance::between(&zero, &NodeId::from_bytes(far)).bucket_index(),
            Some(159)
        );
        let mut near = [0u8; 20];
        near[19] = 1;
        assert_eq!(
            Distance::between(&zero, &NodeId::from_bytes(near)).bucket_index(),
            Some(0)
        );
    }

    proptest! {
        #[test]
        fn random_ids_fall_in_the_requested_bucket(local in any::<[u8; 20]>(), index in 0u8..160, seed in any::<u64>()) {
            let local = NodeId::from_bytes(local);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let id = random_id_in_bucket(&local, index, &mut rng);
            prop_assert_eq!(Distance::between(&local, &id).bucket_index(), Some(index));
        }

        #[test]
        fn distance_is_symmetric_and_orders_like_integers(a in any::<[u8; 20]>(), b in any::<[u8; 20]>()) {
            let (a, b) = (NodeId::from_bytes(a), NodeId::from_bytes(b));
            prop_assert_eq!(Distance::between(&a, &b), Distance::between(&b, &a));
            let zero = NodeId::from_bytes([0; 20]);
            let ord = Distance::between(&zero, &a).cmp(&Distance::between(&zero, &b));
            prop_assert_eq!(ord, a.as_bytes().cmp(b.as_bytes()));
        }
    }
}
