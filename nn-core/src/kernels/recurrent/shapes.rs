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
