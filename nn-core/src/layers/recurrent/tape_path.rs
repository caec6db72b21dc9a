//! The tape path: one [`Var::recurrent`] node per layer and direction.

use super::{Cell, Recurrent, RecurrentOutput};
use crate::kernels::dropout::fill_mask_from;
use crate::tape::Var;
use crate::Float;

impl<T: Float, C: Cell> Recurrent<T, C> {
    /// The tape path with initial and final states, PyTorch's
    /// `module(x, (h0, c0))`: `x: [B, T, input_size]`; `h0`, `c0` (LSTM
    /// only) `[layers·dirs, B, H]`, zeros when absent. Returns `output: [B,
    /// T, dirs·H]` (the top layer's, both directions side by side, forward
    /// first), `h_n` and `c_n`: `[layers·dirs, B, H]`.
    ///
    /// # Panics
    /// If `x`, `h0` or `c0` has the wrong shape, or `c0` is given to a layer
    /// without a cell state, naming the layer and the shapes (at the
    /// caller's line).
    #[track_caller]
    pub fn forward_with_state(
        &self,
        x: &Var<T>,
        h0: Option<&Var<T>>,
        c0: Option<&Var<T>>,
    ) -> RecurrentOutput<T> {
        let name = self.cell.name();
        let cfg = &self.config;
        let xs = x.shape();
        if !matches!(xs.as_slice(), &[_, t, i] if t > 0 && i == cfg.input_size) {
            panic!(
                "{name}: expected input [batch, steps, {}] (steps at least 1), got {xs:?}",
                cfg.input_size
            );
        }
        let runs = cfg.num_layers * cfg.directions();
        let states = [runs, xs[0], cfg.hidden_size];
        for (what, s) in [("h0", h0), ("c0", c0)] {
            if let Some(s) = s.map(|s| s.shape()) {
                if s != states {
                    panic!("{name}: {what} must be [num_layers * directions, batch, hidden] = {states:?}, got {s:?}");
                }
            }
        }
        if c0.is_some() && !C::CELL_STATE {
            panic!("{name}: c0 given, but only an LSTM has a cell state");
        }
        let tape = x.tape();
        let mut input = x.clone();
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for l in 0..cfg.num_layers {
            let mut outputs = Vec::new();
            for d in 0..cfg.directions() {
                let k = l * cfg.directions() + d;
                let w = self.params[k].each_ref().map(|p| tape.param(p));
                let initial = |s: Option<&Var<T>>| s.map(|s| s.slice(0, k..k + 1));
                let (h0, c0) = (initial(h0), initial(c0));
                let out =
                    input.recurrent(&self.cell, w.each_ref(), h0.as_ref(), c0.as_ref(), d == 1);
                outputs.push(out.output);
                h_n.push(out.h_n);
                c_n.extend(out.c_n);
            }
            input = joined(&outputs, 2);
            if l + 1 < cfg.num_layers && cfg.dropout > 0.0 && self.training {
                // The mask comes from the layer's own source, in the static
                // path's order, as `Dropout`'s: two layers made from one seed
                // drop alike on both paths.
                let mut mask = ndarray::ArrayD::zeros(ndarray::IxDyn(&input.shape()));
                fill_mask_from(mask.view_mut(), cfg.dropout, &mut self.rng.borrow_mut());
                input = &input * &tape.constant(mask);
            }
        }
        RecurrentOutput {
            output: input,
            h_n: joined(&h_n, 0),
            c_n: C::CELL_STATE.then(|| joined(&c_n, 0)),
        }
    }

    /// The top layer's final hidden states of each direction side by side:
    /// `[B, dirs·H]` of `h_n: [layers·dirs, B, H]`.
    pub(super) fn last_output(&self, h_n: &Var<T>) -> Var<T> {
        let (dirs, runs) = (self.config.directions(), h_n.shape()[0]);
        let top = h_n.slice(0, runs - dirs..runs);
        let b = top.shape()[1];
        let top = if dirs == 1 {
            top
        } else {
            top.permute(&[1, 0, 2])
        };
        top.reshape(&[b, self.config.output_size()])
    }
}

/// `vars` joined along `axis` (the one itself when alone).
fn joined<T: Float>(vars: &[Var<T>], axis: usize) -> Var<T> {
    match vars {
        [one] => one.clone(),
        _ => Var::concat(&vars.iter().collect::<Vec<_>>(), axis),
    }
}
