//! Image ops made of other ops, so their gradients are those ops': group
//! normalization, nearest-neighbour upsampling, zero padding and adaptive
//! average pooling, on NCHW tensors, as PyTorch defines them.

use ndarray::{ArrayD, IxDyn};

use crate::tape::Var;
use crate::Float;

/// The four axes of an NCHW input, or a panic naming `op` and the shape.
#[track_caller]
fn nchw<T: Float>(op: &str, x: &Var<T>) -> [usize; 4] {
    match x.shape()[..] {
        [n, c, h, w] => [n, c, h, w],
        ref s => panic!("{op}: expected an NCHW input [batch, channels, height, width], got {s:?}"),
    }
}

impl<T: Float> Var<T> {
    /// Group normalization (PyTorch's `GroupNorm`): the channels cut into
    /// `groups` groups, each sample's group normalized over its channels and
    /// positions (biased variance, `eps` inside the root), then each channel
    /// scaled by `γ` and shifted by `β` (both of shape `[channels]`).
    ///
    /// # Panics
    /// If the input is not NCHW, `groups` does not divide the channels, or
    /// `γ`, `β` are not `[channels]` (at the caller's line).
    #[track_caller]
    pub fn group_norm(&self, groups: usize, gamma: &Var<T>, beta: &Var<T>, eps: f64) -> Var<T> {
        let [n, c, h, w] = nchw("group_norm", self);
        assert!(
            groups > 0 && c.is_multiple_of(groups),
            "group_norm: {groups} groups do not divide {c} channels"
        );
        for (name, p) in [("γ", gamma), ("β", beta)] {
            assert!(
                p.shape() == [c],
                "group_norm: {name} has shape {:?}, expected [{c}]",
                p.shape()
            );
        }
        let per_group = c / groups * h * w;
        let tape = self.tape();
        let (ones, zeros) = (
            tape.constant(ArrayD::from_elem(IxDyn(&[per_group]), T::one())),
            tape.constant(ArrayD::zeros(IxDyn(&[per_group]))),
        );
        let normalized = self
            .reshape(&[n, groups, per_group])
            .layer_norm(&ones, &zeros, 1, eps)
            .reshape(&[n, c, h, w]);
        &(&normalized * &gamma.reshape(&[1, c, 1, 1])) + &beta.reshape(&[1, c, 1, 1])
    }

    /// Nearest-neighbour upsampling by whole factors (PyTorch's
    /// `Upsample(scale_factor=(sh, sw), mode="nearest")`, Keras's
    /// `UpSampling2D`): every pixel repeated `sh × sw` times.
    ///
    /// # Panics
    /// If the input is not NCHW or a factor is 0 (at the caller's line).
    #[track_caller]
    pub fn upsample_nearest2d(&self, (sh, sw): (usize, usize)) -> Var<T> {
        let [_, _, h, w] = nchw("upsample_nearest2d", self);
        assert!(
            sh > 0 && sw > 0,
            "upsample_nearest2d: factors ({sh}, {sw}) must be positive"
        );
        let rows: Vec<usize> = (0..h * sh).map(|i| i / sh).collect();
        let cols: Vec<usize> = (0..w * sw).map(|j| j / sw).collect();
        self.index_select(2usize, &rows).index_select(3usize, &cols)
    }

    /// Zeros around the image: `(top, bottom, left, right)` rows and
    /// columns (PyTorch's `F.pad(x, (left, right, top, bottom))`, Keras's
    /// `ZeroPadding2D`).
    ///
    /// # Panics
    /// If the input is not NCHW (at the caller's line).
    #[track_caller]
    pub fn pad2d(&self, (top, bottom, left, right): (usize, usize, usize, usize)) -> Var<T> {
        let [n, c, h, w] = nchw("pad2d", self);
        let tape = self.tape();
        let zeros = |shape: [usize; 4]| tape.constant(ArrayD::zeros(IxDyn(&shape)));
        let tall = Var::concat(
            &[&zeros([n, c, top, w]), self, &zeros([n, c, bottom, w])],
            2usize,
        );
        let rows = h + top + bottom;
        Var::concat(
            &[
                &zeros([n, c, rows, left]),
                &tall,
                &zeros([n, c, rows, right]),
            ],
            3usize,
        )
    }

    /// Average pooling to an `(oh, ow)` output whatever the input's size
    /// (PyTorch's `AdaptiveAvgPool2d`): output row `i` averages input rows
    /// `⌊i·h/oh⌋ .. ⌈(i+1)·h/oh⌉`, and columns likewise.
    ///
    /// # Panics
    /// If the input is not NCHW or an output size is 0 (at the caller's line).
    #[track_caller]
    pub fn adaptive_avg_pool2d(&self, (oh, ow): (usize, usize)) -> Var<T> {
        let [_, _, h, w] = nchw("adaptive_avg_pool2d", self);
        assert!(
            oh > 0 && ow > 0,
            "adaptive_avg_pool2d: the output size ({oh}, {ow}) must be positive"
        );
        let window =
            |i: usize, out: usize, len: usize| i * len / out..((i + 1) * len).div_ceil(out);
        let rows: Vec<Var<T>> = (0..oh)
            .map(|i| {
                let band = self.slice(2usize, window(i, oh, h)).mean_axis(2usize, true);
                let cells: Vec<Var<T>> = (0..ow)
                    .map(|j| band.slice(3usize, window(j, ow, w)).mean_axis(3usize, true))
                    .collect();
                Var::concat(&cells.iter().collect::<Vec<_>>(), 3usize)
            })
            .collect();
        Var::concat(&rows.iter().collect::<Vec<_>>(), 2usize)
    }
}

crate::instances!(Var: group_norm, upsample_nearest2d, pad2d, adaptive_avg_pool2d);
