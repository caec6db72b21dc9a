//! Ops that rearrange elements: reshape, transpose/permute, concat, slice,
//! index_select, gather, where.

use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::kernels::shape as k;
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
    /// If the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Var<T> {
        let shape = shape.to_vec();
        self.tape().record(&[self], move |v| {
            assert!(
                shape.iter().product::<usize>() == v[0].len(),
                "reshape: cannot reshape {:?} into {shape:?}",
                v[0].shape()
            );
            (reshape(v[0], &shape), Reshape)
        })
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`.
    pub fn permute(&self, axes: &[usize]) -> Var<T> {
        let axes = axes.to_vec();
        self.tape().record(&[self], move |v| {
            (k::permute(v[0].view(), &axes), Permute(axes))
        })
    }

    /// Swaps axes `a` and `b`.
    pub fn transpose(&self, a: usize, b: usize) -> Var<T> {
        let n = self.ndim();
        assert!(
            a < n && b < n,
            "transpose: axes ({a}, {b}) out of range for shape {:?}",
            self.shape()
        );
        let mut axes: Vec<usize> = (0..n).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// The transpose of a 2-D variable.
    pub fn t(&self) -> Var<T> {
        assert!(
            self.ndim() == 2,
            "t: expected a 2-D variable, got shape {:?}",
            self.shape()
        );
        self.transpose(0, 1)
    }

    /// Joins variables along `axis`; the other axes must agree.
    pub fn concat(vars: &[&Var<T>], axis: usize) -> Var<T> {
        assert!(!vars.is_empty(), "concat: no inputs");
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

    /// The elements `range` along `axis`.
    pub fn slice(&self, axis: usize, range: Range<usize>) -> Var<T> {
        self.tape().record(&[self], |v| {
            (
                k::slice(v[0].view(), axis, range.clone()),
                SliceOp { axis, range },
            )
        })
    }

    /// The sub-arrays at `indices` along `axis` (`torch.index_select`).
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Var<T> {
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
    pub fn gather(&self, axis: usize, index: ArrayD<usize>) -> Var<T> {
        self.tape().record(&[self], |v| {
            (
                k::gather(v[0].view(), axis, index.view()),
                Gather { axis, index },
            )
        })
    }

    /// `mask ? a : b`, element by element, broadcasting all three.
    pub fn where_(mask: &ArrayD<bool>, a: &Var<T>, b: &Var<T>) -> Var<T> {
        a.tape().record(&[a, b], |v| {
            (
                k::where_(mask.view(), v[0].view(), v[1].view()),
                Where(mask.clone()),
            )
        })
    }
}
