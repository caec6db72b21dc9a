//! Recurrent layers on the tape: one node per direction of one layer, whose
//! value is every step's state `[B, T, S]`; the output, `h_n` and `c_n` are
//! slices of it, so gradients reaching any of them meet in that node.

use ndarray::{ArrayD, ArrayView1, ArrayView2, ArrayView3, Axis, Ix1, Ix2, Ix3};

use crate::kernels::recurrent::{self as k, Cell, Recorded, Run, Shapes, StateGrads};
use crate::layers::RecurrentOutput;
use crate::tape::var::checked;
use crate::tape::{Op, Var};
use crate::Float;

/// The node of one run: the cell, the direction, which initial states were
/// inputs, and the forward's cache (its states are the node's value): the
/// cell's gates and every step's operands `[x_t, 1, h_{t-1}]`, `T · B ·
/// (cache_width + I + 1 + H)` values kept until backward.
struct RecurrentOp<T: Float, C: Cell> {
    cell: C,
    cache: ndarray::Array3<T>,
    reverse: bool,
    has_h0: bool,
    has_c0: bool,
}

/// The inputs `[x, w_ih, w_hh, b_ih, b_hh, h0?, c0?]` as a kernel run; the
/// initial states `[1, B, H]` as `[B, H]`.
fn run_of<'a, T: Float>(
    v: &[&'a ArrayD<T>],
    has_h0: bool,
    has_c0: bool,
    reverse: bool,
) -> Run<'a, T> {
    let m = |a: &'a ArrayD<T>| -> ArrayView2<'a, T> {
        a.view().into_dimensionality::<Ix2>().expect("checked 2-D")
    };
    let vec = |a: &'a ArrayD<T>| -> ArrayView1<'a, T> {
        a.view().into_dimensionality::<Ix1>().expect("checked 1-D")
    };
    let state = |a: &'a ArrayD<T>| -> ArrayView2<'a, T> {
        let a = a.view().into_dimensionality::<Ix3>().expect("checked 3-D");
        a.index_axis_move(Axis(0), 0)
    };
    let c0_at = 5 + usize::from(has_h0);
    Run {
        x: v[0]
            .view()
            .into_dimensionality::<Ix3>()
            .expect("checked 3-D"),
        w_ih: m(v[1]),
        w_hh: m(v[2]),
        b_ih: vec(v[3]),
        b_hh: vec(v[4]),
        h0: has_h0.then(|| state(v[5])),
        c0: has_c0.then(|| state(v[c0_at])),
        reverse,
    }
}

impl<T: Float, C: Cell> Op<T> for RecurrentOp<T, C> {
    fn name(&self) -> &'static str {
        self.cell.name()
    }

    fn backward(
        &self,
        x: &[&ArrayD<T>],
        y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let run = run_of(x, self.has_h0, self.has_c0, self.reverse);
        let h = run.w_hh.ncols();
        let states = y.view().into_dimensionality::<Ix3>().expect("3-D");
        let dy: ArrayView3<'_, T> = dy.view().into_dimensionality().expect("3-D");
        let dout = StateGrads {
            h: Some(dy.slice_move(ndarray::s![.., .., ..h])),
            c: C::CELL_STATE.then(|| dy.slice_move(ndarray::s![.., .., h..])),
            ..StateGrads::default()
        };
        let at = |i: usize| need.get(i).copied().unwrap_or(false);
        let c0_at = 5 + usize::from(self.has_h0);
        let wants = [
            at(0),
            at(1),
            at(2),
            at(3),
            at(4),
            self.has_h0 && at(5),
            self.has_c0 && at(c0_at),
        ];
        let g = k::recurrent_backward(&self.cell, &run, self.cache.view(), states, dout, wants);
        // Initial states were `[1, B, H]` inputs.
        let state = |s: Option<ndarray::Array2<T>>| s.map(|s| s.insert_axis(Axis(0)).into_dyn());
        let mut out = vec![
            g.x.map(|a| a.into_dyn()),
            g.w_ih.map(|a| a.into_dyn()),
            g.w_hh.map(|a| a.into_dyn()),
            g.b_ih.map(|a| a.into_dyn()),
            g.b_hh.map(|a| a.into_dyn()),
        ];
        if self.has_h0 {
            out.push(state(g.h0));
        }
        if self.has_c0 {
            out.push(state(g.c0));
        }
        out
    }
}

/// `[1, B, H]` as `[B, H]`, or why not.
fn initial_shape<'a>(
    name: &str,
    what: &str,
    s: Option<&'a [usize]>,
) -> Result<Option<&'a [usize]>, String> {
    match s {
        None => Ok(None),
        Some([1, rest @ ..]) if rest.len() == 2 => Ok(Some(rest)),
        Some(other) => Err(format!(
            "{name}: {what} must be [1, batch, hidden], got {other:?}"
        )),
    }
}

impl<T: Float> Var<T> {
    /// One direction of one recurrent layer over a batch-first sequence
    /// `self: [B, T, input]`: PyTorch's `nn.RNN`, `nn.LSTM` or `nn.GRU`
    /// with one layer and `batch_first=True` (with `reverse`, the backward
    /// direction of a bidirectional one: `x` read from the last step to the
    /// first, each state written at its step's index). `weights` are
    /// `[weight_ih, weight_hh, bias_ih, bias_hh]` in PyTorch's layouts
    /// (`[G·H, input]`, `[G·H, H]`, `[G·H]`, `[G·H]`, gates in PyTorch's
    /// order); the initial states `h0`, `c0` (LSTM only) are `[1, B, H]`,
    /// zeros when absent.
    ///
    /// Returns PyTorch's `(output, (h_n, c_n))`: `output: [B, T, H]`,
    /// `h_n, c_n: [1, B, H]`. One node holds every step's state; the three
    /// are slices of it.
    ///
    /// ```
    /// use nn_core::layers::GruCell;
    /// use nn_core::Tape;
    /// use ndarray::{Array1, Array2, Array3};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Array3::from_elem((2, 5, 3), 0.1)); // [B, T, input]
    /// let w_ih = tape.var(Array2::from_elem((12, 3), 0.2)); // [3 * 4, input]
    /// let w_hh = tape.var(Array2::from_elem((12, 4), -0.1)); // [3 * 4, 4]
    /// let b = tape.var(Array1::zeros(12));
    /// let out = x.recurrent(&GruCell, [&w_ih, &w_hh, &b, &b], None, None, false);
    /// assert_eq!(out.output.shape(), vec![2, 5, 4]);
    /// assert_eq!(out.h_n.shape(), vec![1, 2, 4]);
    /// out.output.sum().backward();
    /// assert_eq!(w_hh.grad().unwrap().shape(), &[12, 4]);
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit, or `c0` is given to a cell without a cell
    /// state, naming the cell and the shapes (at the caller's line).
    #[track_caller]
    pub fn recurrent<C: Cell>(
        &self,
        cell: &C,
        weights: [&Var<T>; 4],
        h0: Option<&Var<T>>,
        c0: Option<&Var<T>>,
        reverse: bool,
    ) -> RecurrentOutput<T> {
        let name = cell.name();
        let [x, w_ih, w_hh, b_ih, b_hh] =
            [self, weights[0], weights[1], weights[2], weights[3]].map(|v| v.shape());
        let (h0s, c0s) = (h0.map(|v| v.shape()), c0.map(|v| v.shape()));
        let d = checked(initial_shape(name, "h0", h0s.as_deref()).and_then(|h0| {
            let c0 = initial_shape(name, "c0", c0s.as_deref())?;
            k::check_shapes(
                cell,
                &Shapes {
                    x: &x,
                    w_ih: &w_ih,
                    w_hh: &w_hh,
                    b_ih: &b_ih,
                    b_hh: &b_hh,
                    h0,
                    c0,
                },
            )
        }));
        let (has_h0, has_c0) = (h0.is_some(), c0.is_some());
        let mut inputs = vec![self];
        inputs.extend(weights);
        inputs.extend(h0);
        inputs.extend(c0);
        let states = self.tape().record(&inputs, |v| {
            let run = run_of(v, has_h0, has_c0, reverse);
            let Recorded { cache, states } = k::recurrent_forward(cell, &run);
            let op = RecurrentOp {
                cell: cell.clone(),
                cache,
                reverse,
                has_h0,
                has_c0,
            };
            (states.into_dyn(), op)
        });
        let (b, t, h) = (d.batch, d.steps, d.hidden);
        let last = if reverse { 0 } else { t - 1 };
        let fin = states
            .slice(1, last..last + 1)
            .reshape(&[1, b, C::state_width(h)]);
        if C::CELL_STATE {
            RecurrentOutput {
                output: states.slice(2, 0..h),
                h_n: fin.slice(2, 0..h),
                c_n: Some(fin.slice(2, h..2 * h)),
            }
        } else {
            RecurrentOutput {
                output: states,
                h_n: fin,
                c_n: None,
            }
        }
    }
}
