//! Matrix products on the tape.

use ndarray::{ArrayD, ArrayView1, Ix2};

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
        let (xv, w) = (two_d(x[0]), two_d(x[1]));
        let dy = two_d(dy);
        let mut dx = need[0].then(|| ArrayD::zeros(x[0].raw_dim()));
        let mut dw = need[1].then(|| ArrayD::zeros(x[1].raw_dim()));
        let mut db = (x.len() == 3 && need[2]).then(|| ArrayD::zeros(x[2].raw_dim()));
        k::linear_backward_into(
            xv,
            w,
            dy,
            dx.as_mut()
                .map(|d| d.view_mut().into_dimensionality::<Ix2>().expect("2-D")),
            dw.as_mut()
                .map(|d| d.view_mut().into_dimensionality::<Ix2>().expect("2-D")),
            db.as_mut()
                .map(|d| d.view_mut().into_dimensionality().expect("1-D")),
        );
        let mut out = vec![dx, dw];
        if x.len() == 3 {
            out.push(db);
        }
        out
    }
}

fn two_d<T: Float>(a: &ArrayD<T>) -> ndarray::ArrayView2<'_, T> {
    a.view()
        .into_dimensionality::<Ix2>()
        .expect("linear: 2-D operands")
}

impl<T: Float> Var<T> {
    /// Matrix product: `[m,k] @ [k,n]`, batched `[B,m,k] @ [B,k,n]`, or
    /// `[B,m,k] @ [k,n]` with a shared right operand.
    ///
    /// # Panics
    /// If the inner dimensions differ, naming both shapes.
    pub fn matmul(&self, rhs: &Var<T>) -> Var<T> {
        self.tape().record(&[self, rhs], |v| {
            (k::matmul(v[0].view(), v[1].view()), MatMul)
        })
    }

    /// The dense layer `x Wᵀ + b` with PyTorch's weight layout `W: [out, in]`,
    /// as one node (no transposed copy of `W`).
    pub fn linear(&self, weight: &Var<T>, bias: Option<&Var<T>>) -> Var<T> {
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        self.tape().record(&inputs, |v| {
            let (x, w) = (v[0], v[1]);
            assert!(
                x.ndim() == 2 && w.ndim() == 2 && x.shape()[1] == w.shape()[1],
                "linear: input {:?} does not fit weight {:?} (layout [out, in])",
                x.shape(),
                w.shape()
            );
            let bias: Option<ArrayView1<'_, T>> = v.get(2).map(|b| {
                b.view().into_dimensionality().unwrap_or_else(|_| {
                    panic!(
                        "linear: bias {:?} does not match weight {:?}",
                        b.shape(),
                        w.shape()
                    )
                })
            });
            let mut y = ndarray::Array2::zeros((x.shape()[0], w.shape()[0]));
            k::linear_into(two_d(x), two_d(w), bias, y.view_mut());
            (y.into_dyn(), Linear)
        })
    }
}
