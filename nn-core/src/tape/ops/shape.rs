//! Ops that rearrange elements: reshape, transpose/permute, concat, slice,
//! index_select, gather, where; unsqueeze, squeeze and stack, made of
//! reshape and concat; split and chunk, made of slice. Axes may be given
//! from the back, negative as PyTorch's `dim=-1` (see [`Dim`]).

use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::binary::broadcast_shape;
use super::reduce::axis_of;
use crate::kernels::shape as k;
use crate::tape::dim::{self, Dim};
use crate::tape::var::checked;
use crate::tape::{Op, Var};
use crate::Float;

struct Reshape;

unary_op!(Reshape, |op| "reshape", |x, _y, dy| reshape(dy, x.shape()));

fn reshape<T: Float>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    a.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(shape))
        .expect("reshape: sizes checked")
}

struct Permute(Vec<usize>);

unary_op!(Permute, |op| "permute", |_x, _y, dy| k::permute(
    dy.view(),
    &k::inverse_permutation(&op.0),
));

struct Concat {
    axis: usize,
    sizes: Vec<usize>,
}

impl<T: Float> Op<T> for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn backward(
        &self,
        _x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        k::concat_backward(dy.view(), self.axis, &self.sizes)
            .into_iter()
            .zip(need)
            .map(|(g, &n)| n.then_some(g))
            .collect()
    }
}

struct SliceOp {
    axis: usize,
    range: Range<usize>,
}

unary_op!(SliceOp, |op| "slice", |x, _y, dy| k::slice_backward(
    dy.view(),
    x.shape(),
    op.axis,
    op.range.clone(),
));

struct IndexSelect {
    axis: usize,
    indices: Vec<usize>,
}

unary_op!(IndexSelect, |op| "index_select", |x, _y, dy| {
    k::index_select_backward(dy.view(), x.shape(), op.axis, &op.indices)
});

struct Gather {
    axis: usize,
    index: ArrayD<usize>,
}

unary_op!(Gather, |op| "gather", |x, _y, dy| k::gather_backward(
    dy.view(),
    x.shape(),
    op.axis,
    op.index.view(),
));

struct Where(ArrayD<bool>);

impl<T: Float> Op<T> for Where {
    fn name(&self) -> &'static str {
        "where"
    }
    fn backward(
        &self,
        _x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        k::where_backward(self.0.view(), dy.view(), [need[0], need[1]]).into()
    }
}

impl<T: Float> Var<T> {
    /// The same elements (in row-major order) in a new shape.
    ///
    /// # Panics
    /// If the element counts differ, naming both shapes (at the caller's line).
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Var<T> {
        if self.with_value(|v| v.len()) != shape.iter().product::<usize>() {
            panic!("reshape: cannot reshape {:?} into {shape:?}", self.shape());
        }
        let shape = shape.to_vec();
        self.tape()
            .record(&[self], move |v| (reshape(v[0], &shape), Reshape))
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`.
    ///
    /// # Panics
    /// If `axes` is not a permutation of the axes (at the caller's line).
    #[track_caller]
    pub fn permute(&self, axes: &[usize]) -> Var<T> {
        let n = self.ndim();
        let mut seen = vec![false; n];
        let valid = axes.len() == n
            && axes
                .iter()
                .all(|&a| a < n && !std::mem::replace(&mut seen[a], true));
        if !valid {
            panic!(
                "permute: {axes:?} is not a permutation of the axes of shape {:?}",
                self.shape()
            );
        }
        let axes = axes.to_vec();
        self.tape().record(&[self], move |v| {
            (k::permute(v[0].view(), &axes), Permute(axes))
        })
    }

    /// Swaps axes `a` and `b`.
    ///
    /// # Panics
    /// If either axis is out of range (at the caller's line).
    #[track_caller]
    pub fn transpose(&self, a: impl Dim, b: impl Dim) -> Var<T> {
        let (n, shape) = (self.ndim(), self.shape());
        let (a, b) = (
            dim::axis("transpose", a, &shape),
            dim::axis("transpose", b, &shape),
        );
        let mut axes: Vec<usize> = (0..n).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// The transpose of a 2-D variable.
    ///
    /// # Panics
    /// If the variable is not 2-D (at the caller's line).
    #[track_caller]
    pub fn t(&self) -> Var<T> {
        assert!(
            self.ndim() == 2,
            "t: expected a 2-D variable, got shape {:?}",
            self.shape()
        );
        self.transpose(0, 1)
    }

    /// Joins variables along `axis`; the other axes must agree.
    ///
    /// # Panics
    /// If `vars` is empty, `axis` is out of range or the shapes differ outside
    /// it, naming `concat` and the shapes (at the caller's line).
    #[track_caller]
    pub fn concat(vars: &[&Var<T>], axis: impl Dim) -> Var<T> {
        assert!(!vars.is_empty(), "concat: no inputs");
        let first = vars[0].shape();
        let axis = dim::axis("concat", axis, &first);
        Self::concat_at(vars, first, axis)
    }

    /// [`Var::concat`] once the axis is resolved (compiled once: see
    /// `instances!`).
    #[track_caller]
    fn concat_at(vars: &[&Var<T>], first: Vec<usize>, axis: usize) -> Var<T> {
        checked(axis_of("concat", &first, axis));
        for x in &vars[1..] {
            let same = x.with_value(|x| {
                x.ndim() == first.len()
                    && x.shape()
                        .iter()
                        .zip(&first)
                        .enumerate()
                        .all(|(i, (a, b))| i == axis || a == b)
            });
            if !same {
                panic!(
                    "concat: shapes {first:?} and {:?} differ outside axis {axis}",
                    x.shape()
                );
            }
        }
        vars[0].tape().record(vars, |v| {
            let views: Vec<ArrayViewD<'_, T>> = v.iter().map(|a| a.view()).collect();
            let out = k::concat(&views, axis);
            (
                out,
                Concat {
                    axis,
                    sizes: v.iter().map(|a| a.shape()[axis]).collect(),
                },
            )
        })
    }

    /// A new axis of length 1 at `axis` (`0..=ndim`), as PyTorch's
    /// `unsqueeze`: `[2, 3]` at 1 is `[2, 1, 3]`.
    ///
    /// # Panics
    /// If `axis` is past `ndim` (at the caller's line).
    #[track_caller]
    pub fn unsqueeze(&self, axis: impl Dim) -> Var<T> {
        let mut shape = self.shape();
        // One more place than axes: `-1` appends, as PyTorch's.
        let axis = dim::place("unsqueeze", axis, &shape, shape.len() + 1);
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// Removes `axis`, which must have length 1 (PyTorch's `squeeze(dim)`
    /// leaves other lengths alone; here they are a mistake).
    ///
    /// # Panics
    /// If `axis` is out of range or its length is not 1 (at the caller's line).
    #[track_caller]
    pub fn squeeze(&self, axis: impl Dim) -> Var<T> {
        let mut shape = self.shape();
        let axis = dim::axis("squeeze", axis, &shape);
        assert!(
            shape[axis] == 1,
            "squeeze: axis {axis} of shape {shape:?} has length {}, not 1",
            shape[axis]
        );
        shape.remove(axis);
        self.reshape(&shape)
    }

    /// Joins variables of one shape along a new axis at `axis` (`0..=ndim`),
    /// as `torch.stack`: three `[2, 4]` at 1 give `[2, 3, 4]`. (The gradient
    /// of each input is its slice of the output's.)
    ///
    /// # Panics
    /// If `vars` is empty, the shapes differ or `axis` is past `ndim`, naming
    /// `stack` and the shapes (at the caller's line).
    #[track_caller]
    pub fn stack(vars: &[&Var<T>], axis: impl Dim) -> Var<T> {
        assert!(!vars.is_empty(), "stack: no inputs");
        let first = vars[0].shape();
        let axis = dim::place("stack", axis, &first, first.len() + 1);
        if let Some(other) = vars.iter().map(|v| v.shape()).find(|s| *s != first) {
            panic!("stack: inputs of shapes {first:?} and {other:?}; all must have one shape");
        }
        let lifted: Vec<Var<T>> = vars.iter().map(|v| v.unsqueeze(axis)).collect();
        Var::concat(&lifted.iter().collect::<Vec<_>>(), axis)
    }

    /// Pieces of `sizes[i]` elements along `axis`, in order (PyTorch's
    /// `torch.split` with a list of sizes): `[6, 4]` into `[1, 2, 3]` along 0
    /// gives `[1, 4]`, `[2, 4]` and `[3, 4]`.
    ///
    /// # Panics
    /// If `axis` is out of range or the sizes do not add up to its length
    /// (at the caller's line).
    #[track_caller]
    pub fn split(&self, sizes: &[usize], axis: impl Dim) -> Vec<Var<T>> {
        let shape = self.shape();
        let axis = dim::axis("split", axis, &shape);
        let total: usize = sizes.iter().sum();
        assert!(
            total == shape[axis],
            "split: sizes {sizes:?} add up to {total}, but axis {axis} of shape {shape:?} has {}",
            shape[axis]
        );
        let mut start = 0;
        sizes
            .iter()
            .map(|&n| {
                start += n;
                self.slice(axis, start - n..start)
            })
            .collect()
    }

    /// `chunks` pieces along `axis`, each of `⌈len / chunks⌉` elements but
    /// the last (PyTorch's `torch.chunk`: possibly fewer pieces when the
    /// length does not fill them, as 5 in 4 chunks gives 2, 2, 1; an empty
    /// axis gives `chunks` empty pieces).
    ///
    /// # Panics
    /// If `chunks` is 0 or `axis` is out of range (at the caller's line).
    #[track_caller]
    pub fn chunk(&self, chunks: usize, axis: impl Dim) -> Vec<Var<T>> {
        let shape = self.shape();
        let axis = dim::axis("chunk", axis, &shape);
        assert!(
            chunks > 0,
            "chunk: 0 chunks of axis {axis} of shape {shape:?}"
        );
        let len = shape[axis];
        let sizes: Vec<usize> = if len == 0 {
            // PyTorch: every chunk of an empty axis, empty.
            vec![0; chunks]
        } else {
            let each = len.div_ceil(chunks);
            (0..len)
                .step_by(each)
                .map(|start| each.min(len - start))
                .collect()
        };
        self.split(&sizes, axis)
    }

    /// The elements `range` along `axis`.
    ///
    /// # Panics
    /// If `axis` is out of range or `range` out of bounds, naming `slice` and
    /// the shape (at the caller's line).
    #[track_caller]
    pub fn slice(&self, axis: impl Dim, range: Range<usize>) -> Var<T> {
        let axis = dim::axis("slice", axis, &self.shape());
        Self::slice_at(self, axis, range)
    }

    /// [`Var::slice`] once the axis is resolved (compiled once: see
    /// `instances!`).
    #[track_caller]
    fn slice_at(&self, axis: usize, range: Range<usize>) -> Var<T> {
        checked(self.with_value(|v| {
            axis_of("slice", v.shape(), axis)?;
            if range.start <= range.end && range.end <= v.shape()[axis] {
                Ok(())
            } else {
                Err(format!(
                    "slice: range {range:?} is out of bounds for axis {axis} of shape {:?}",
                    v.shape()
                ))
            }
        }));
        self.tape().record(&[self], |v| {
            (
                k::slice(v[0].view(), axis, range.clone()),
                SliceOp { axis, range },
            )
        })
    }

    /// The sub-arrays at `indices` along `axis` (`torch.index_select`).
    ///
    /// # Panics
    /// If `axis` is out of range or an index is past its end (at the
    /// caller's line).
    #[track_caller]
    pub fn index_select(&self, axis: impl Dim, indices: &[usize]) -> Var<T> {
        let axis = dim::axis("index_select", axis, &self.shape());
        Self::index_select_at(self, axis, indices)
    }

    /// [`Var::index_select`] once the axis is resolved (compiled once: see
    /// `instances!`).
    #[track_caller]
    fn index_select_at(&self, axis: usize, indices: &[usize]) -> Var<T> {
        checked(self.with_value(|v| {
            axis_of("index_select", v.shape(), axis)?;
            match indices.iter().find(|&&i| i >= v.shape()[axis]) {
                Some(bad) => Err(format!(
                    "index_select: index {bad} is out of range for axis {axis} of shape {:?}",
                    v.shape()
                )),
                None => Ok(()),
            }
        }));
        let indices = indices.to_vec();
        self.tape().record(&[self], |v| {
            (
                k::index_select(v[0].view(), axis, &indices),
                IndexSelect { axis, indices },
            )
        })
    }

    /// Elements picked along `axis` by `index`, which has the output's shape
    /// (`torch.gather`).
    ///
    /// # Panics
    /// If `axis` is out of range, `index` does not fit the input or holds an
    /// index past the axis's end (at the caller's line).
    #[track_caller]
    pub fn gather(&self, axis: impl Dim, index: ArrayD<usize>) -> Var<T> {
        let axis = dim::axis("gather", axis, &self.shape());
        Self::gather_at(self, axis, index)
    }

    /// [`Var::gather`] once the axis is resolved (compiled once: see
    /// `instances!`).
    #[track_caller]
    fn gather_at(&self, axis: usize, index: ArrayD<usize>) -> Var<T> {
        checked(self.with_value(|v| gather_fits(v.shape(), axis, &index)));
        self.tape().record(&[self], |v| {
            (
                k::gather(v[0].view(), axis, index.view()),
                Gather { axis, index },
            )
        })
    }

    /// `mask ? a : b`, element by element, broadcasting all three.
    ///
    /// # Panics
    /// If the shapes do not broadcast, naming `where` and the shapes (at the
    /// caller's line).
    #[track_caller]
    pub fn where_(mask: &ArrayD<bool>, a: &Var<T>, b: &Var<T>) -> Var<T> {
        let ab = a.with_shapes(b, |x, y| (x.to_vec(), y.to_vec()));
        let ab = broadcast_shape("where", &ab.0, &ab.1);
        broadcast_shape("where", mask.shape(), &ab);
        a.tape().record(&[a, b], |v| {
            (
                k::where_(mask.view(), v[0].view(), v[1].view()),
                Where(mask.clone()),
            )
        })
    }
}

/// Whether `index` can gather from `shape` along `axis` (`torch.gather`'s rules).
fn gather_fits(shape: &[usize], axis: usize, index: &ArrayD<usize>) -> Result<(), String> {
    axis_of("gather", shape, axis)?;
    let fits = index.ndim() == shape.len()
        && index
            .shape()
            .iter()
            .zip(shape)
            .enumerate()
            .all(|(d, (i, s))| d == axis || i <= s);
    if !fits {
        return Err(format!(
            "gather: index of shape {:?} does not fit input of shape {shape:?} along axis {axis}",
            index.shape()
        ));
    }
    match index.iter().find(|&&i| i >= shape[axis]) {
        Some(bad) => Err(format!(
            "gather: index {bad} is out of range for axis {axis} of shape {shape:?}"
        )),
        None => Ok(()),
    }
}

crate::instances!(
    Var: reshape, permute, t, where_, concat_at, slice_at, index_select_at, gather_at
);
