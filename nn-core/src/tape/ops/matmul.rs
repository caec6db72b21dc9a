//! Matrix products on the tape: `matmul` under `torch.matmul`'s rules and the
//! dense layer `linear` over any leading dimensions.

use ndarray::{ArrayD, ArrayView1, ArrayView2, Ix2};

use crate::kernels::matmul as k;
use crate::tape::{Op, Var};
use crate::Float;

struct MatMul;

impl<T: Float> Op<T> for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        k::matmul_backward(x[0].view(), x[1].view(), dy.view(), [need[0], need[1]]).into()
    }
}

struct Linear;

impl<T: Float> Op<T> for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let has_bias = x.len() == 3;
        let [dx, dw, db] = k::linear_backward(
            x[0].view(),
            matrix(x[1]),
            dy.view(),
            [need[0], need[1], has_bias && need[2]],
        );
        let mut out = vec![dx, dw];
        if has_bias {
            out.push(db);
        }
        out
    }
}

fn matrix<T: Float>(a: &ArrayD<T>) -> ArrayView2<'_, T> {
    a.view()
        .into_dimensionality::<Ix2>()
        .expect("linear: the weight was checked to be 2-D")
}

impl<T: Float> Var<T> {
    /// Matrix product under `torch.matmul`'s rules:
    ///
    /// - `[n, k] @ [k, m]` → `[n, m]`;
    /// - `[.., n, k] @ [k, m]` → `[.., n, m]`: a matrix on the right is shared
    ///   by every leading index (`[B, T, D] @ [D, E]` → `[B, T, E]`), computed
    ///   as one product over the folded rows, without copying a contiguous
    ///   left operand;
    /// - `[.., n, k] @ [.., k, m]`: batched, the leading dimensions
    ///   broadcasting like NumPy's (`[B, H, T, D] @ [B, H, D, T]`,
    ///   `[B, 1, n, k] @ [H, k, m]`);
    /// - a 1-D operand is a row on the left and a column on the right, its
    ///   axis dropped from the result (`[k] @ [k]` is a 0-d dot product).
    ///
    /// ```
    /// use nn_core::Tape;
    /// use ndarray::{Array, Array2};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Array::from_elem((2, 3, 4), 1.0)); // [B, T, D]
    /// let w = tape.var(Array2::from_elem((4, 5), 0.5)); // [D, E]
    /// let y = x.matmul(&w);
    /// assert_eq!(y.shape(), vec![2, 3, 5]);
    /// y.sum().backward();
    /// assert_eq!(w.grad().unwrap().shape(), &[4, 5]);
    /// ```
    ///
    /// # Panics
    /// If the inner dimensions differ or the batch dimensions do not
    /// broadcast, naming `matmul` and both shapes (at the caller's line).
    #[track_caller]
    pub fn matmul(&self, rhs: &Var<T>) -> Var<T> {
        if let Err(e) = self.with_shapes(rhs, k::check_matmul) {
            panic!("{e}");
        }
        self.tape().record(&[self, rhs], |v| {
            (k::matmul(v[0].view(), v[1].view()), MatMul)
        })
    }

    /// The dense layer `x Wᵀ + b` (PyTorch's `F.linear`) with PyTorch's
    /// weight layout `W: [out, in]` and bias `[out]`, for `x: [.., in]` of any
    /// rank from 1: the result is `[.., out]`. One node, no transposed copy of
    /// `W`; the leading dimensions of `x` are folded into the rows of one
    /// product (a view, no copy, when `x` is contiguous).
    ///
    /// ```
    /// use nn_core::Tape;
    /// use ndarray::{Array, Array1, Array2};
    ///
    /// let tape = Tape::<f32>::new();
    /// let x = tape.constant(Array::from_elem((2, 7, 3), 1.0)); // [B, T, in]
    /// let w = tape.var(Array2::from_elem((4, 3), 0.5)); // [out, in]
    /// let b = tape.var(Array1::from_elem(4, 0.25));
    /// let y = x.linear(&w, Some(&b));
    /// assert_eq!(y.shape(), vec![2, 7, 4]);
    /// assert_eq!(y.value()[[1, 6, 3]], 1.75);
    /// ```
    ///
    /// # Panics
    /// If `x`'s last dimension is not `W`'s second, `W` is not 2-D or the bias
    /// is not `[out]`, naming `linear` and the shapes (at the caller's line).
    #[track_caller]
    pub fn linear(&self, weight: &Var<T>, bias: Option<&Var<T>>) -> Var<T> {
        let checked = self.with_shapes(weight, |x, w| match bias {
            Some(b) => b.with_value(|b| k::check_linear(x, w, Some(b.shape()))),
            None => k::check_linear(x, w, None),
        });
        if let Err(e) = checked {
            panic!("{e}");
        }
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        self.tape().record(&inputs, |v| {
            let w = matrix(v[1]);
            let b: Option<ArrayView1<'_, T>> = v.get(2).map(|b| {
                b.view()
                    .into_dimensionality()
                    .expect("linear: the bias was checked to be 1-D")
            });
            (k::linear(v[0].view(), w, b), Linear)
        })
    }
}

crate::instances!(Var: matmul, linear);
