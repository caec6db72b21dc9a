//! Element-wise functions of two arrays: one trait for `f(a, b)` and its two
//! partial derivatives, and the broadcasting kernels every binary op
//! (`+ - * /`, `maximum`, `atan2`, yours) shares. The built-in ops are in
//! [`super::arith`].

use std::fmt::Debug;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, Dimension, IxDyn, Zip};

use super::broadcast::broadcast_shape;
use super::owned::filled;
use super::simd::widest;
use crate::parallel::{for_each_range, Shared, ALONE_SPLIT_ELEMENTS};
use crate::Float;

/// A scalar function of two arguments, with both partial derivatives.
///
/// Implement this for your own op and [`Var::binary`](crate::Var::binary)
/// records it on the tape with NumPy broadcasting; the tape multiplies the
/// partials by the output's gradient and sums them back to each operand's
/// shape.
///
/// ```
/// use nn_core::kernels::binary::Binary;
/// use nn_core::{Float, Tape};
/// use ndarray::array;
///
/// /// `sqrt(a² + b²)`.
/// #[derive(Clone, Copy, Debug)]
/// struct Hypot;
///
/// impl Binary for Hypot {
///     fn name(&self) -> &'static str { "hypot" }
///     fn f<T: Float>(&self, a: T, b: T) -> T { a.hypot(b) }
///     fn df_da<T: Float>(&self, a: T, _b: T, y: T) -> T { a / y }
///     fn df_db<T: Float>(&self, _a: T, b: T, y: T) -> T { b / y }
/// }
///
/// let tape = Tape::<f64>::new();
/// let a = tape.var(array![[3.0], [6.0]]); // [2, 1]
/// let b = tape.var(array![4.0, 8.0]); // [2]: the pair broadcasts to [2, 2]
/// let y = a.binary(&b, Hypot);
/// assert_eq!(y.shape(), vec![2, 2]);
/// assert!((y.value()[[1, 1]] - 10.0).abs() < 1e-12); // sqrt(6² + 8²)
/// y.sum().backward();
/// // ∂y/∂a = a / y, summed over the axis `a` was broadcast along.
/// let da = a.grad().unwrap();
/// assert_eq!(da.shape(), &[2, 1]);
/// assert!((da[[0, 0]] - (3.0 / 5.0 + 3.0 / 73f64.sqrt())).abs() < 1e-12);
/// ```
pub trait Binary: Clone + Debug + Send + Sync + 'static {
    /// The op's name, used in panics (`"add: cannot broadcast shapes …"`).
    fn name(&self) -> &'static str;

    /// `y = f(a, b)`.
    fn f<T: Float>(&self, a: T, b: T) -> T;

    /// `∂f/∂a`, given `a`, `b` and `y = f(a, b)` so implementations can reuse `y`.
    fn df_da<T: Float>(&self, a: T, b: T, y: T) -> T;

    /// `∂f/∂b`, given `a`, `b` and `y = f(a, b)`.
    fn df_db<T: Float>(&self, a: T, b: T, y: T) -> T;
}

/// `f(a, b)` element by element, `a` and `b` broadcasting like NumPy.
///
/// # Panics
/// If the shapes do not broadcast, naming the op and both shapes.
pub fn forward<T: Float, B: Binary>(
    op: &B,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    // The common case, same-shape contiguous operands, as a flat loop the
    // compiler vectorizes, in the widest vectors the CPU has, split over the
    // cores when large.
    if let (true, Some(xs), Some(ys)) = (a.shape() == b.shape(), a.as_slice(), b.as_slice()) {
        // SAFETY: the operands are as long as the output, so the loop
        // writes every element of each range.
        return unsafe {
            filled(a.raw_dim(), ALONE_SPLIT_ELEMENTS, |r, os| {
                let (xs, ys) = (&xs[r.clone()], &ys[r]);
                widest(|| {
                    for ((o, &x), &y) in os.iter_mut().zip(xs).zip(ys) {
                        o.write(op.f(x, y));
                    }
                })
            })
        };
    }
    let shape = broadcast_shape(op.name(), a.shape(), b.shape());
    let s = Spread::new(op.name(), IxDyn(&shape));
    s.restore(
        Zip::from(&s.view(&a))
            .and(&s.view(&b))
            .map_collect(|&x, &y| op.f(x, y)),
    )
}

/// Local gradients `(dy * ∂f/∂a, dy * ∂f/∂b)`, each of the output's (broadcast)
/// shape, computed only where `need` asks. Sum them back to the operands'
/// shapes with [`super::broadcast::sum_to_shape`] (the tape does).
///
/// # Panics
/// If `y` and `dy` differ in shape or the operands do not broadcast to it.
pub fn backward<T: Float, B: Binary>(
    op: &B,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    need: [bool; 2],
) -> [Option<ArrayD<T>>; 2] {
    assert!(
        y.shape() == dy.shape(),
        "{}: gradient of shape {:?} does not match output shape {:?}",
        op.name(),
        dy.shape(),
        y.shape()
    );
    [
        need[0].then(|| local(op.name(), &a, &b, &y, &dy, |a, b, y| op.df_da(a, b, y))),
        need[1].then(|| local(op.name(), &a, &b, &y, &dy, |a, b, y| op.df_db(a, b, y))),
    ]
}

/// `dy * df(a, b, y)` over the output's shape.
#[inline(always)]
fn local<T: Float>(
    name: &str,
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    y: &ArrayViewD<'_, T>,
    dy: &ArrayViewD<'_, T>,
    df: impl Fn(T, T, T) -> T + Sync,
) -> ArrayD<T> {
    let same = a.shape() == dy.shape() && b.shape() == dy.shape();
    if let (true, Some(av), Some(bv), Some(yv), Some(gv)) = (
        same,
        a.as_slice(),
        b.as_slice(),
        y.as_slice(),
        dy.as_slice(),
    ) {
        // SAFETY: the operands are as long as the output, so the loop
        // writes every element of each range.
        return unsafe {
            filled(dy.raw_dim(), ALONE_SPLIT_ELEMENTS, |r, os| {
                let (av, bv, yv, gv) = (&av[r.clone()], &bv[r.clone()], &yv[r.clone()], &gv[r]);
                widest(|| {
                    for ((((o, &a), &b), &y), &g) in os.iter_mut().zip(av).zip(bv).zip(yv).zip(gv) {
                        o.write(g * df(a, b, y));
                    }
                })
            })
        };
    }
    let s = Spread::new(name, dy.raw_dim());
    let out = Zip::from(&s.view(a))
        .and(&s.view(b))
        .and(&s.view(y))
        .and(&s.view(dy))
        .map_collect(|&a, &b, &y, &g| g * df(a, b, y));
    s.restore(out)
}

/// `out = f(a, b)` for operands of one shape (no broadcasting): the
/// allocation-free form of [`forward`], for the static path.
///
/// # Panics
/// If the shapes differ, naming the op and the shapes.
pub fn forward_into<T: Float, B: Binary>(
    op: &B,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    out: ArrayViewMutD<'_, T>,
) {
    map_into(op.name(), a, b, out, |x, y| op.f(x, y));
}

/// `out = relu(f(a, b))` for operands of one shape, in one pass: a residual
/// block's `relu(x + f(x))` without a second visit to the sum. Negative sums
/// become +0, and NaN and -0.0 stay, as [`crate::activation::relu`] gives them.
///
/// # Panics
/// If the shapes differ, naming the op and the shapes.
pub fn forward_relu_into<T: Float, B: Binary>(
    op: &B,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    out: ArrayViewMutD<'_, T>,
) {
    map_into(op.name(), a, b, out, |x, y| {
        let v = op.f(x, y);
        if v < T::zero() {
            T::zero()
        } else {
            v
        }
    });
}

/// `out = f(a, b)` element by element, for operands of one shape.
#[inline(always)]
fn map_into<T: Float>(
    name: &str,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    mut out: ArrayViewMutD<'_, T>,
    f: impl Fn(T, T) -> T + Sync,
) {
    check_same(name, &[a.shape(), b.shape(), out.shape()]);
    if let (Some(xs), Some(ys), Some(os)) = (a.as_slice(), b.as_slice(), out.as_slice_mut()) {
        // Split over the cores when large (a residual block's megabytes of
        // activations): element-wise, so the same values on any split.
        let os = Shared::new(os);
        return for_each_range(xs.len(), 3 * xs.len(), &|r| {
            // SAFETY: the parts' ranges are disjoint.
            let os = unsafe { os.slice(r.clone()) };
            let (xs, ys) = (&xs[r.clone()], &ys[r]);
            widest(|| {
                for ((o, &x), &y) in os.iter_mut().zip(xs).zip(ys) {
                    *o = f(x, y);
                }
            })
        });
    }
    Zip::from(out)
        .and(&a)
        .and(&b)
        .for_each(|o, &x, &y| *o = f(x, y));
}

/// `acc += g` for arrays of one shape, split over the cores when large (a
/// residual's gradient): the same values as ndarray's `+=`, which ran on
/// one thread.
///
/// # Panics
/// If the shapes differ, naming them.
pub fn add_assign_into<T: Float>(mut acc: ArrayViewMutD<'_, T>, g: ArrayViewD<'_, T>) {
    check_same("add_assign", &[acc.shape(), g.shape()]);
    if let (Some(gs), Some(os)) = (g.as_slice(), acc.as_slice_mut()) {
        let os = Shared::new(os);
        return for_each_range(gs.len(), 2 * gs.len(), &|r| {
            // SAFETY: the parts' ranges are disjoint.
            let os = unsafe { os.slice(r.clone()) };
            let gs = &gs[r];
            widest(|| {
                for (o, &g) in os.iter_mut().zip(gs) {
                    *o += g;
                }
            })
        });
    }
    acc += &g;
}

/// [`backward`] for operands of one shape, into buffers: `da = dy · ∂f/∂a`
/// and `db = dy · ∂f/∂b`, each written only when given (the same products as
/// [`backward`], so both paths round alike).
///
/// # Panics
/// If the shapes differ, naming the op and the shapes.
pub fn backward_into<T: Float, B: Binary>(
    op: &B,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    da: Option<ArrayViewMutD<'_, T>>,
    db: Option<ArrayViewMutD<'_, T>>,
) {
    check_same(op.name(), &[a.shape(), b.shape(), y.shape(), dy.shape()]);
    if let Some(da) = da {
        local_into(op.name(), &a, &b, &y, &dy, da, |a, b, y| op.df_da(a, b, y));
    }
    if let Some(db) = db {
        local_into(op.name(), &a, &b, &y, &dy, db, |a, b, y| op.df_db(a, b, y));
    }
}

/// `out = dy * df(a, b, y)`, all of one shape.
#[inline(always)]
fn local_into<T: Float>(
    name: &str,
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    y: &ArrayViewD<'_, T>,
    dy: &ArrayViewD<'_, T>,
    mut out: ArrayViewMutD<'_, T>,
    df: impl Fn(T, T, T) -> T,
) {
    check_same(name, &[dy.shape(), out.shape()]);
    if let (Some(av), Some(bv), Some(yv), Some(gv), Some(ov)) = (
        a.as_slice(),
        b.as_slice(),
        y.as_slice(),
        dy.as_slice(),
        out.as_slice_mut(),
    ) {
        let it = ov.iter_mut().zip(av).zip(bv).zip(yv).zip(gv);
        return widest(|| {
            for ((((o, &a), &b), &y), &g) in it {
                *o = g * df(a, b, y);
            }
        });
    }
    Zip::from(out)
        .and(a)
        .and(b)
        .and(y)
        .and(dy)
        .for_each(|o, &a, &b, &y, &g| *o = g * df(a, b, y));
}

/// Panics unless all `shapes` are equal, naming the op.
fn check_same(name: &str, shapes: &[&[usize]]) {
    assert!(
        shapes.iter().all(|s| *s == shapes[0]),
        "{name}: operands, output and gradients must have one shape here (no broadcasting), got {shapes:?}"
    );
}

/// Operands viewed at the output's shape for [`Zip`], without the output's
/// length-1 axes: `Zip` runs its inner loop along the last axis, so a trailing
/// 1 (a column `[n, 1]`) would make each inner loop one element long.
struct Spread<'n> {
    name: &'n str,
    shape: IxDyn,
    /// The output's axes of length 1, ascending.
    unit: Vec<usize>,
}

impl<'n> Spread<'n> {
    fn new(name: &'n str, shape: IxDyn) -> Self {
        let unit = (0..shape.ndim()).filter(|&i| shape[i] == 1).collect();
        Spread { name, shape, unit }
    }

    /// `x` broadcast to the output's shape, its length-1 axes removed.
    fn view<'a, T>(&self, x: &'a ArrayViewD<'_, T>) -> ArrayViewD<'a, T> {
        let full = x.broadcast(self.shape.clone()).unwrap_or_else(|| {
            panic!(
                "{}: operand of shape {:?} does not broadcast to {:?}",
                self.name,
                x.shape(),
                self.shape.slice()
            )
        });
        // Highest axis first, so the lower indices stay valid.
        self.unit
            .iter()
            .rev()
            .fold(full, |v, &axis| v.index_axis_move(Axis(axis), 0))
    }

    /// A result computed on the views, given back the output's full shape.
    fn restore<T>(&self, out: ArrayD<T>) -> ArrayD<T> {
        self.unit
            .iter()
            .fold(out, |o, &axis| o.insert_axis(Axis(axis)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::arith::{Add, Mul};

    #[test]
    fn forward_into_splits_large_operands_without_changing_a_value() {
        // Sizes below and above the split (at `PARALLEL_ELEMENTS` elements
        // touched, a third of that per array: three arrays), and ones that
        // do not divide evenly; each value is its own op of its two
        // elements, so the definition is exact.
        let split = crate::parallel::PARALLEL_ELEMENTS / 3;
        for n in [7, split - 1, split + 13, 9 * split + 1] {
            let a = ArrayD::from_shape_fn(IxDyn(&[n]), |i| (i[0] % 97) as f32 * 0.37 - 9.0);
            let b = ArrayD::from_shape_fn(IxDyn(&[n]), |i| (i[0] % 89) as f32 * -0.53 + 4.0);
            let mut out = ArrayD::from_elem(IxDyn(&[n]), f32::NAN);
            forward_into(&Add, a.view(), b.view(), out.view_mut());
            assert!(
                out.iter().zip(&a).zip(&b).all(|((&o, &x), &y)| o == x + y),
                "add, {n}"
            );
            forward_into(&Mul, a.view(), b.view(), out.view_mut());
            assert!(
                out.iter().zip(&a).zip(&b).all(|((&o, &x), &y)| o == x * y),
                "mul, {n}"
            );
        }
    }

    #[test]
    fn allocating_forms_split_large_operands_without_changing_a_value() {
        // Empty, at and around `ALONE_SPLIT_ELEMENTS` (split over the cores
        // where the machine has two or more), in `f32` and `f64`; each value
        // is its own op of its elements, so the definition is exact.
        fn check<T: Float>(n: usize) {
            let a = ArrayD::from_shape_fn(IxDyn(&[n]), |i| T::lit((i[0] % 97) as f64 * 0.37 - 9.0));
            let b = ArrayD::from_shape_fn(IxDyn(&[n]), |i| T::lit((i[0] % 89) as f64 * 0.11 + 0.5));
            let y = forward(&Mul, a.view(), b.view());
            let dy = ArrayD::from_shape_fn(IxDyn(&[n]), |i| T::lit((i[0] % 7) as f64 - 3.0));
            assert_eq!(
                y,
                Zip::from(&a).and(&b).map_collect(|&x, &z| x * z),
                "n {n}"
            );
            let [da, db] = backward(&Mul, a.view(), b.view(), y.view(), dy.view(), [true, true]);
            assert_eq!(da.unwrap(), &dy * &b, "n {n}");
            assert_eq!(db.unwrap(), &dy * &a, "n {n}");
        }
        for n in [
            0,
            ALONE_SPLIT_ELEMENTS - 1,
            ALONE_SPLIT_ELEMENTS,
            ALONE_SPLIT_ELEMENTS + 13,
        ] {
            check::<f32>(n);
        }
        check::<f64>(ALONE_SPLIT_ELEMENTS + 13);
    }

    /// `relu(a + b)` in one pass is the sum then plain `relu` (the
    /// activation's own kernel), bit for bit: negative sums to +0, -0.0 and
    /// NaN kept, on both sides of the split and in the strided fallback.
    #[test]
    fn forward_relu_into_is_the_sum_then_relu() {
        use crate::activation::{relu, ActivationFn};
        let split = crate::parallel::PARALLEL_ELEMENTS / 3;
        let specials = [
            f32::NAN,
            -0.0,
            0.0,
            -1.0,
            2.0,
            f32::NEG_INFINITY,
            f32::INFINITY,
        ];
        for n in [7, split + 13] {
            let a = ArrayD::from_shape_fn(IxDyn(&[n]), |i| match i[0] % 11 {
                k if k < specials.len() => specials[k],
                k => k as f32 * 0.37 - 2.0,
            });
            let b = ArrayD::from_shape_fn(IxDyn(&[n]), |i| if i[0] % 13 < 5 { -0.0 } else { -1.5 });
            let mut sum = ArrayD::from_elem(IxDyn(&[n]), f32::NAN);
            forward_into(&Add, a.view(), b.view(), sum.view_mut());
            let want = relu.forward(sum.view());
            let mut out = ArrayD::from_elem(IxDyn(&[n]), f32::NAN);
            forward_relu_into(&Add, a.view(), b.view(), out.view_mut());
            let bits = |v: &ArrayD<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out), bits(&want), "{n}");
            // Reversed views have no slice: the element-wise fallback.
            fn reversed(v: &ArrayD<f32>) -> ArrayViewD<'_, f32> {
                v.slice(ndarray::s![..;-1]).into_dyn()
            }
            let mut out = ArrayD::from_elem(IxDyn(&[n]), f32::NAN);
            forward_relu_into(&Add, reversed(&a), reversed(&b), out.view_mut());
            let want = reversed(&want).to_owned();
            assert_eq!(bits(&out), bits(&want), "strided, {n}");
        }
    }

    #[test]
    fn add_assign_into_adds_every_element_once_split_or_strided() {
        // Below and above the split (two arrays touched), and a transposed
        // gradient (the fallback); each sum is one addition, exact to compare.
        let split = crate::parallel::PARALLEL_ELEMENTS / 2;
        for n in [5, split + 7, 4 * split + 3] {
            let g = ArrayD::from_shape_fn(IxDyn(&[n]), |i| (i[0] % 89) as f32 * -0.53 + 4.0);
            let start = ArrayD::from_shape_fn(IxDyn(&[n]), |i| (i[0] % 97) as f32 * 0.37);
            let mut acc = start.clone();
            add_assign_into(acc.view_mut(), g.view());
            assert!(
                acc.iter()
                    .zip(&start)
                    .zip(&g)
                    .all(|((&o, &a), &b)| o == a + b),
                "{n}"
            );
        }
        let g = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| (i[0] * 4 + i[1]) as f64);
        let mut acc = ArrayD::from_elem(IxDyn(&[4, 3]), 0.5);
        add_assign_into(acc.view_mut(), g.t());
        assert_eq!(acc, g.t().mapv(|v| v + 0.5));
    }

    #[test]
    #[should_panic(expected = "add_assign: operands, output and gradients must have one shape")]
    fn add_assign_into_refuses_another_shape() {
        let mut acc = ArrayD::<f32>::zeros(IxDyn(&[2, 3]));
        add_assign_into(acc.view_mut(), ArrayD::zeros(IxDyn(&[3, 2])).view());
    }
}
