//! The shapes of a run and the sizes [`check_shapes`] derives from them.

use super::Cell;

/// The shapes of one run, from which [`check_shapes`] derives its sizes.
#[derive(Clone, Copy, Debug)]
pub struct Shapes<'a> {
    /// `[B, T, I]`.
    pub x: &'a [usize],
    /// `[G·H, I]`.
    pub w_ih: &'a [usize],
    /// `[G·H, H]`.
    pub w_hh: &'a [usize],
    /// `[G·H]`.
    pub b_ih: &'a [usize],
    /// `[G·H]`.
    pub b_hh: &'a [usize],
    /// `[B, H]`, when given.
    pub h0: Option<&'a [usize]>,
    /// `[B, H]`, when given (an LSTM's only).
    pub c0: Option<&'a [usize]>,
}

/// The sizes of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// `B`.
    pub batch: usize,
    /// `T`, at least 1.
    pub steps: usize,
    /// `I`.
    pub input: usize,
    /// `H`.
    pub hidden: usize,
}

/// What a forward's cache is for (see [`Dims::cache_shape`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheFor {
    /// Backward reads every step's rows.
    Backward,
    /// Nothing reads it after its step.
    Inference,
}

impl Dims {
    /// Width of a step's operand row `[x_t, 1, h_{t-1}]`: the left operand
    /// of the step's product with the joined weights, and of the weight
    /// gradients' products.
    pub fn operand_width(&self) -> usize {
        self.input + 1 + self.hidden
    }

    /// Width of a row of the forward's cache `[T, B, ·]`: what the cell
    /// keeps for backward ([`Cell::cache_width`]), then the step's operands
    /// `[x_t, 1, h_{t-1}]` (the inputs of the parameter gradients).
    pub fn cache_row_width<C: Cell>(&self) -> usize {
        C::cache_width(self.hidden) + self.operand_width()
    }

    /// Shape of the forward's cache `[slots, B, cache_row_width]`: a slot
    /// per step when backward will read it ([`CacheFor::Backward`]); for
    /// inference one slot that every step reuses, where the run
    /// [`Dims::joins_input`] (a projected input fills every step's slot
    /// before the loop, so it keeps one per step).
    pub fn cache_shape<C: Cell>(&self, cache_for: CacheFor) -> [usize; 3] {
        let slots = match cache_for {
            CacheFor::Inference if self.joins_input::<C>() => 1,
            _ => self.steps,
        };
        [slots, self.batch, self.cache_row_width::<C>()]
    }

    /// Shape of the forward's joined weights `[W_ih, bias, W_hh]`.
    pub fn joined_weights<C: Cell>(&self) -> [usize; 2] {
        [C::GATES * self.hidden, self.operand_width()]
    }

    /// Whether a step's product takes the input projection too (cells
    /// without [`Cell::SPLIT_GRAD`]): while the joined weights stay small
    /// enough (128 Ki elements) to be read from a core's cache at every
    /// step. Larger layers project every step's input first. A size of the
    /// layer, not of the batch: a row gives the same bits alone or batched.
    pub fn joins_input<C: Cell>(&self) -> bool {
        !C::SPLIT_GRAD && self.operand_width() * C::GATES * self.hidden <= 1 << 17
    }

    /// Rows per block of the batch whose parameter-gradient sums the
    /// backward adds at every step, while the step's rows are in cache:
    /// blocks of 32 (the last shorter) from a batch of 64 on, where each
    /// block's product is large enough to pay for its call (64 Ki gradient
    /// elements); otherwise `None`, and the sums are one product over every
    /// step after the recurrence. Either way the order of the sums depends
    /// on the sizes alone, not on the number of threads.
    pub fn grad_block<C: Cell>(&self) -> Option<usize> {
        let elements = C::grad_width(self.hidden) * self.operand_width();
        (self.batch >= 64 && elements >= 1 << 16).then_some(32)
    }

    /// Shape of the backward's parameter-gradient scratch: per block of
    /// [`Dims::grad_block`] rows (one block without them), the gate
    /// gradients' products with the operands, `[blocks, grad_width,
    /// operand_width]`.
    pub fn block_grads<C: Cell>(&self) -> [usize; 3] {
        [
            self.grad_block::<C>().map_or(1, |k| self.batch.div_ceil(k)),
            C::grad_width(self.hidden),
            self.operand_width(),
        ]
    }
}

/// The sizes of a run of `cell` on these shapes, or why they do not fit (a
/// message naming the cell and the shapes).
pub fn check_shapes<C: Cell>(cell: &C, s: &Shapes<'_>) -> Result<Dims, String> {
    let name = cell.name();
    let g = C::GATES;
    let &[batch, steps, input] = s.x else {
        return Err(format!(
            "{name}: expected input [batch, steps, features], got {:?}",
            s.x
        ));
    };
    if steps == 0 {
        return Err(format!("{name}: the input {:?} has no time steps", s.x));
    }
    let hidden = match s.w_hh {
        &[rows, h] if rows == g * h && h > 0 => h,
        other => {
            return Err(format!(
                "{name}: weight_hh must be [{g} * hidden, hidden], got {other:?}"
            ))
        }
    };
    let expect = |what: &str, got: &[usize], want: &[usize]| {
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{name}: {what} must be {want:?} for input {:?} and hidden size {hidden}, got {got:?}",
                s.x
            ))
        }
    };
    expect("weight_ih", s.w_ih, &[g * hidden, input])?;
    expect("bias_ih", s.b_ih, &[g * hidden])?;
    expect("bias_hh", s.b_hh, &[g * hidden])?;
    if let Some(h0) = s.h0 {
        expect("h0", h0, &[batch, hidden])?;
    }
    match s.c0 {
        Some(_) if !C::CELL_STATE => {
            return Err(format!(
                "{name}: c0 given, but only an LSTM has a cell state"
            ))
        }
        Some(c0) => expect("c0", c0, &[batch, hidden])?,
        None => {}
    }
    Ok(Dims {
        batch,
        steps,
        input,
        hidden,
    })
}
