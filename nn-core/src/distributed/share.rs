//! Which elements of each parameter a rank updates when the optimizer's
//! work is split over the ranks (ZeRO's sharded optimizer).

use std::ops::Range;

/// One rank's share of every parameter: of a parameter with `n` elements
/// (in row-major order), rank `r` of `ranks` owns `n·r/ranks .. n·(r+1)/ranks`.
/// The shares of all ranks cover each parameter once, and differ in size by
/// at most one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    rank: usize,
    ranks: usize,
}

impl Share {
    /// The whole of every parameter (one rank).
    pub const WHOLE: Share = Share { rank: 0, ranks: 1 };

    /// Rank `rank`'s share among `ranks`.
    ///
    /// # Panics
    /// Unless `rank < ranks`.
    pub fn new(rank: usize, ranks: usize) -> Self {
        assert!(
            rank < ranks,
            "Share::new: rank {rank} is not one of {ranks} ranks"
        );
        Share { rank, ranks }
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// How many ranks share the parameters.
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// Whether this share is every element.
    pub fn is_whole(&self) -> bool {
        self.ranks == 1
    }

    /// The elements this rank owns of a parameter with `len` elements.
    pub fn range(&self, len: usize) -> Range<usize> {
        self.range_of(self.rank, len)
    }

    /// The elements rank `rank` owns of a parameter with `len` elements.
    pub fn range_of(&self, rank: usize, len: usize) -> Range<usize> {
        let at = |r: usize| (len as u128 * r as u128 / self.ranks as u128) as usize;
        at(rank)..at(rank + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_each_parameter_once_and_differ_by_at_most_one() {
        for ranks in 1..6 {
            for len in 0..20 {
                let sizes: Vec<usize> = (0..ranks)
                    .map(|r| Share::new(r, ranks).range(len).len())
                    .collect();
                let mut end = 0;
                for r in 0..ranks {
                    let range = Share::new(r, ranks).range(len);
                    assert_eq!(range.start, end, "{ranks} ranks, {len} elements");
                    end = range.end;
                }
                assert_eq!(end, len);
                let (lo, hi) = (sizes.iter().min(), sizes.iter().max());
                assert!(hi.unwrap() - lo.unwrap() <= 1, "{sizes:?}");
            }
        }
        assert_eq!(Share::WHOLE.range(7), 0..7);
    }
}
