//! Reductions on the tape: `sum`, `mean`, `max`, `min`, over everything or one axis.

use ndarray::{arr0, ArrayD};

use crate::kernels::reduce::{self as k, Extreme};
use crate::tape::dim::{self, Dim};
use crate::tape::var::checked;
use crate::tape::{Op, Var};
use crate::Float;

/// `axis` must be an axis of `shape` (the check ops make before recording).
pub(super) fn axis_of(op: &str, shape: &[usize], axis: usize) -> Result<(), String> {
    if axis < shape.len() {
        Ok(())
    } else {
        Err(format!(
            "{op}: axis {axis} is out of range for shape {shape:?}"
        ))
    }
}

/// Sum or mean: the gradient is `dy` spread back over the reduced elements, scaled.
struct Spread {
    axis: Option<usize>,
    mean: bool,
}

impl<T: Float> Op<T> for Spread {
    fn name(&self) -> &'static str {
        if self.mean {
            "mean"
        } else {
            "sum"
        }
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let n = match self.axis {
            Some(a) => x[0].shape()[a],
            None => x[0].len(),
        };
        let scale = if self.mean {
            T::one() / T::lit(n as f64)
        } else {
            T::one()
        };
        vec![Some(k::expand_grad(
            dy.view(),
            x[0].shape(),
            self.axis,
            scale,
        ))]
    }
}

/// Max or min along an axis: the gradient goes to the recorded index.
struct ExtremeAxis {
    axis: usize,
    index: ArrayD<usize>,
    name: &'static str,
}

unary_op!(ExtremeAxis, |op| op.name, |x, _y, dy| {
    k::extreme_axis_backward(dy.view(), op.index.view(), x.shape(), op.axis)
});

/// Max or min of all elements: the gradient is shared among ties.
struct ExtremeAll(&'static str);

impl<T: Float> Op<T> for ExtremeAll {
    fn name(&self) -> &'static str {
        self.0
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let (value, g) = (y.iter().next().copied(), dy.iter().next().copied());
        vec![Some(k::extreme_all_backward(
            x[0].view(),
            value.expect("0-d"),
            g.expect("0-d"),
        ))]
    }
}

impl<T: Float> Var<T> {
    /// Sum of all elements (a 0-d result).
    #[track_caller]
    pub fn sum(&self) -> Var<T> {
        self.tape().record(&[self], |v| {
            (
                arr0(v[0].sum()).into_dyn(),
                Spread {
                    axis: None,
                    mean: false,
                },
            )
        })
    }

    /// Mean of all elements (a 0-d result).
    #[track_caller]
    pub fn mean(&self) -> Var<T> {
        self.tape().record(&[self], |v| {
            let n = T::lit(v[0].len() as f64);
            (
                arr0(v[0].sum() / n).into_dyn(),
                Spread {
                    axis: None,
                    mean: true,
                },
            )
        })
    }

    /// Sum along `axis` (negative: from the back, `-1` the last); `keepdim`
    /// keeps it with size 1.
    ///
    /// # Panics
    /// If `axis` is out of range, naming `sum` and the shape (at the caller's line).
    #[track_caller]
    pub fn sum_axis(&self, axis: impl Dim, keepdim: bool) -> Var<T> {
        let axis = dim::axis("sum", axis, &self.shape());
        self.spread_axis(axis, keepdim, false)
    }

    /// Mean along `axis` (negative: from the back); `keepdim` keeps it with
    /// size 1.
    ///
    /// # Panics
    /// If `axis` is out of range, naming `mean` and the shape (at the caller's line).
    #[track_caller]
    pub fn mean_axis(&self, axis: impl Dim, keepdim: bool) -> Var<T> {
        let axis = dim::axis("mean", axis, &self.shape());
        self.spread_axis(axis, keepdim, true)
    }

    /// Sum or mean along an axis already checked (not generic over the
    /// axis's type, so compiled once: see `instances!`).
    #[track_caller]
    fn spread_axis(&self, axis: usize, keepdim: bool, mean: bool) -> Var<T> {
        self.tape().record(&[self], |v| {
            let view = v[0].view();
            let y = match mean {
                true => k::mean_axis(view, axis, keepdim),
                false => k::sum_axis(view, axis, keepdim),
            };
            (
                y,
                Spread {
                    axis: Some(axis),
                    mean,
                },
            )
        })
    }

    /// Largest element (a 0-d result); ties share the gradient.
    ///
    /// # Panics
    /// If the value is empty (at the caller's line).
    #[track_caller]
    pub fn max(&self) -> Var<T> {
        self.extreme_all(Extreme::Max, "max")
    }

    /// Smallest element (a 0-d result); ties share the gradient.
    ///
    /// # Panics
    /// If the value is empty (at the caller's line).
    #[track_caller]
    pub fn min(&self) -> Var<T> {
        self.extreme_all(Extreme::Min, "min")
    }

    /// Largest element along `axis` (negative: from the back; the gradient
    /// flows to the first maximum).
    ///
    /// # Panics
    /// If `axis` is out of range or empty, naming `max` and the shape (at the
    /// caller's line).
    #[track_caller]
    pub fn max_axis(&self, axis: impl Dim, keepdim: bool) -> Var<T> {
        let axis = dim::axis("max", axis, &self.shape());
        self.extreme_axis(axis, keepdim, Extreme::Max, "max")
    }

    /// Smallest element along `axis` (negative: from the back; the gradient
    /// flows to the first minimum).
    ///
    /// # Panics
    /// If `axis` is out of range or empty, naming `min` and the shape (at the
    /// caller's line).
    #[track_caller]
    pub fn min_axis(&self, axis: impl Dim, keepdim: bool) -> Var<T> {
        let axis = dim::axis("min", axis, &self.shape());
        self.extreme_axis(axis, keepdim, Extreme::Min, "min")
    }

    #[track_caller]
    fn extreme_all(&self, which: Extreme, name: &'static str) -> Var<T> {
        if self.with_value(|v| v.is_empty()) {
            panic!("{name}: cannot reduce an empty array");
        }
        self.tape().record(&[self], |v| {
            (
                arr0(k::extreme_all(v[0].view(), which)).into_dyn(),
                ExtremeAll(name),
            )
        })
    }

    #[track_caller]
    fn extreme_axis(
        &self,
        axis: usize,
        keepdim: bool,
        which: Extreme,
        name: &'static str,
    ) -> Var<T> {
        checked(self.with_value(|v| {
            axis_of(name, v.shape(), axis)?;
            match v.shape()[axis] {
                0 => Err(format!(
                    "{name}: cannot reduce an empty axis of shape {:?}",
                    v.shape()
                )),
                _ => Ok(()),
            }
        }));
        self.tape().record(&[self], |v| {
            let (vals, index) = k::extreme_axis(v[0].view(), axis, keepdim, which);
            (vals, ExtremeAxis { axis, index, name })
        })
    }
}

crate::instances!(Var: sum, mean, max, min, spread_axis, extreme_axis);
