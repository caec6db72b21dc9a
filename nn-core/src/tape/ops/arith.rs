//! `+ - * /` and unary `-` on variables and scalars, with NumPy broadcasting.

use std::ops::{Add, Div, Mul, Neg, Sub};

use ndarray::ArrayD;

use crate::kernels::{
    arith,
    math::{Affine, ScalarDiv},
};
use crate::tape::{Op, Var};
use crate::Float;

/// Which binary op a [`Binary`] node is.
#[derive(Clone, Copy)]
enum Kind {
    Add,
    Sub,
    Mul,
    Div,
}

struct Binary(Kind);

impl<T: Float> Op<T> for Binary {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Add => "add",
            Kind::Sub => "sub",
            Kind::Mul => "mul",
            Kind::Div => "div",
        }
    }

    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let need = [need[0], need[1]];
        let [a, b] = match self.0 {
            Kind::Add => [need[0].then(|| dy.clone()), need[1].then(|| dy.clone())],
            Kind::Sub => [
                need[0].then(|| dy.clone()),
                need[1].then(|| dy.mapv(|v| -v)),
            ],
            Kind::Mul => arith::mul_backward(x[0].view(), x[1].view(), dy.view(), need),
            Kind::Div => arith::div_backward(x[0].view(), x[1].view(), dy.view(), need),
        };
        vec![a, b]
    }
}

fn binary<T: Float>(a: &Var<T>, b: &Var<T>, kind: Kind) -> Var<T> {
    a.tape().record(&[a, b], |v| {
        let (x, y) = (v[0].view(), v[1].view());
        let out = match kind {
            Kind::Add => arith::add(x, y),
            Kind::Sub => arith::sub(x, y),
            Kind::Mul => arith::mul(x, y),
            Kind::Div => arith::div(x, y),
        };
        (out, Binary(kind))
    })
}

fn affine<T: Float>(a: &Var<T>, scale: f64, shift: f64) -> Var<T> {
    a.pointwise(Affine { scale, shift })
}

macro_rules! binary_ops {
    ($($trait:ident $method:ident $kind:ident;)*) => {$(
        impl<T: Float> $trait<&Var<T>> for &Var<T> {
            type Output = Var<T>;
            fn $method(self, rhs: &Var<T>) -> Var<T> {
                binary(self, rhs, Kind::$kind)
            }
        }
        impl<T: Float> $trait<Var<T>> for Var<T> {
            type Output = Var<T>;
            fn $method(self, rhs: Var<T>) -> Var<T> {
                binary(&self, &rhs, Kind::$kind)
            }
        }
        impl<T: Float> $trait<&Var<T>> for Var<T> {
            type Output = Var<T>;
            fn $method(self, rhs: &Var<T>) -> Var<T> {
                binary(&self, rhs, Kind::$kind)
            }
        }
        impl<T: Float> $trait<Var<T>> for &Var<T> {
            type Output = Var<T>;
            fn $method(self, rhs: Var<T>) -> Var<T> {
                binary(self, &rhs, Kind::$kind)
            }
        }
        impl<T: Float> $trait<T> for &Var<T> {
            type Output = Var<T>;
            fn $method(self, rhs: T) -> Var<T> {
                scalar_rhs(self, rhs.as_f64(), Kind::$kind)
            }
        }
        impl<T: Float> $trait<T> for Var<T> {
            type Output = Var<T>;
            fn $method(self, rhs: T) -> Var<T> {
                scalar_rhs(&self, rhs.as_f64(), Kind::$kind)
            }
        }
    )*};
}

binary_ops! {
    Add add Add;
    Sub sub Sub;
    Mul mul Mul;
    Div div Div;
}

/// `x (op) c` for a scalar `c`, recorded as one element-wise node.
fn scalar_rhs<T: Float>(x: &Var<T>, c: f64, kind: Kind) -> Var<T> {
    match kind {
        Kind::Add => affine(x, 1.0, c),
        Kind::Sub => affine(x, 1.0, -c),
        Kind::Mul => affine(x, c, 0.0),
        Kind::Div => x
            .tape()
            .record(&[x], |v| (v[0].mapv(|e| e / T::lit(c)), DivByScalar(c))),
    }
}

/// `x / c`, kept as a true division (not `x * (1/c)`) so results round like PyTorch's.
struct DivByScalar(f64);

impl<T: Float> Op<T> for DivByScalar {
    fn name(&self) -> &'static str {
        "div"
    }
    fn backward(
        &self,
        _x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let c = T::lit(self.0);
        vec![Some(dy.mapv(|g| g / c))]
    }
}

/// `c (op) x` for a scalar `c`.
fn scalar_lhs<T: Float>(c: f64, x: &Var<T>, kind: Kind) -> Var<T> {
    match kind {
        Kind::Add => affine(x, 1.0, c),
        Kind::Sub => affine(x, -1.0, c),
        Kind::Mul => affine(x, c, 0.0),
        Kind::Div => x.pointwise(ScalarDiv(c)),
    }
}

macro_rules! scalar_lhs_ops {
    ($($t:ty),*) => {$(
        impl Add<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn add(self, rhs: &Var<$t>) -> Var<$t> { scalar_lhs(self as f64, rhs, Kind::Add) }
        }
        impl Add<Var<$t>> for $t {
            type Output = Var<$t>;
            fn add(self, rhs: Var<$t>) -> Var<$t> { scalar_lhs(self as f64, &rhs, Kind::Add) }
        }
        impl Sub<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn sub(self, rhs: &Var<$t>) -> Var<$t> { scalar_lhs(self as f64, rhs, Kind::Sub) }
        }
        impl Sub<Var<$t>> for $t {
            type Output = Var<$t>;
            fn sub(self, rhs: Var<$t>) -> Var<$t> { scalar_lhs(self as f64, &rhs, Kind::Sub) }
        }
        impl Mul<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn mul(self, rhs: &Var<$t>) -> Var<$t> { scalar_lhs(self as f64, rhs, Kind::Mul) }
        }
        impl Mul<Var<$t>> for $t {
            type Output = Var<$t>;
            fn mul(self, rhs: Var<$t>) -> Var<$t> { scalar_lhs(self as f64, &rhs, Kind::Mul) }
        }
        impl Div<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn div(self, rhs: &Var<$t>) -> Var<$t> { scalar_lhs(self as f64, rhs, Kind::Div) }
        }
        impl Div<Var<$t>> for $t {
            type Output = Var<$t>;
            fn div(self, rhs: Var<$t>) -> Var<$t> { scalar_lhs(self as f64, &rhs, Kind::Div) }
        }
    )*};
}

scalar_lhs_ops!(f32, f64);

impl<T: Float> Neg for &Var<T> {
    type Output = Var<T>;
    fn neg(self) -> Var<T> {
        affine(self, -1.0, 0.0)
    }
}

impl<T: Float> Neg for Var<T> {
    type Output = Var<T>;
    fn neg(self) -> Var<T> {
        affine(&self, -1.0, 0.0)
    }
}
