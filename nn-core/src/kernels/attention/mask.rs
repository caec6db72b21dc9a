//! [`AttentionMask`]: which keys each query may not see.

use ndarray::{ArrayD, ArrayView2, Ix2};

/// Which keys a query may not attend to: the union of a causal mask, an
/// `attn_mask` and a key-padding mask (PyTorch's boolean masks: `true` =
/// masked).
#[derive(Clone, Debug, Default)]
pub struct AttentionMask {
    /// Query `i` does not see key `j > i` (PyTorch's `is_causal`, aligned at
    /// the top left when there are more keys than queries).
    pub causal: bool,
    /// `[Tq, Tk]`: `true` where query `i` may not see key `j`.
    pub attn_mask: Option<ArrayD<bool>>,
    /// `[B, Tk]`: `true` where key `j` of sequence `b` is padding.
    pub key_padding_mask: Option<ArrayD<bool>>,
}

impl AttentionMask {
    /// Only the causal mask (or none).
    pub fn causal(causal: bool) -> Self {
        AttentionMask {
            causal,
            ..Self::default()
        }
    }

    /// Whether nothing is masked.
    pub fn is_empty(&self) -> bool {
        !self.causal && self.attn_mask.is_none() && self.key_padding_mask.is_none()
    }

    /// Whether the masks fit `batch` sequences of `tq` queries and `tk` keys,
    /// or why not (a message naming `op` and the shapes).
    pub fn check(&self, op: &str, batch: usize, tq: usize, tk: usize) -> Result<(), String> {
        if let Some(m) = &self.attn_mask {
            if m.shape() != [tq, tk] {
                return Err(format!(
                    "{op}: attn_mask must be [queries, keys] = [{tq}, {tk}], got {:?}",
                    m.shape()
                ));
            }
        }
        if let Some(m) = &self.key_padding_mask {
            if m.shape() != [batch, tk] {
                return Err(format!(
                    "{op}: key_padding_mask must be [batch, keys] = [{batch}, {tk}], got {:?}",
                    m.shape()
                ));
            }
        }
        Ok(())
    }

    /// The masks as 2-D views (no allocation), for the kernels' inner loops.
    pub(super) fn views(&self) -> MaskViews<'_> {
        MaskViews {
            causal: self.causal,
            attn: two_d(&self.attn_mask),
            padding: two_d(&self.key_padding_mask),
        }
    }
}

fn two_d(m: &Option<ArrayD<bool>>) -> Option<ArrayView2<'_, bool>> {
    m.as_ref()
        .map(|m| m.view().into_dimensionality::<Ix2>().expect("checked 2-D"))
}

pub(super) struct MaskViews<'a> {
    causal: bool,
    attn: Option<ArrayView2<'a, bool>>,
    padding: Option<ArrayView2<'a, bool>>,
}

impl MaskViews<'_> {
    #[inline]
    pub(super) fn masked(&self, b: usize, i: usize, j: usize) -> bool {
        (self.causal && j > i)
            || self.attn.as_ref().is_some_and(|m| m[[i, j]])
            || self.padding.as_ref().is_some_and(|m| m[[b, j]])
    }
}
