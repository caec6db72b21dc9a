//! Gradients summed over the ranks in buckets, each started as soon as
//! backward has finished its parameters, while the layers before them still
//! compute (PyTorch DDP's bucketed overlap).

use std::any::Any;
use std::cell::RefCell;

use nn_core::{Float, Param, Parameters};

use nn_core::distributed::Share;

use super::Collective;

/// One step's gradient sum over the ranks: each trainable parameter's
/// gradient, times `weight`, summed over the ranks and scaled as
/// [`Buckets::finish`] is told. Parameters are taken in reverse order (the
/// order a chain's backward finishes them) and cut into buckets of at least
/// `cap_bytes`; [`Buckets::ready`] starts a bucket once every parameter in it
/// was reported, the last bucket (with the step's small extra values, such
/// as the loss) waits for [`Buckets::finish`].
pub(crate) struct Buckets<'g, T: Float> {
    group: &'g dyn Collective,
    /// Trainable parameters, last visited first.
    params: Vec<Param<T>>,
    /// Where each parameter's values start in the flat buffers.
    offsets: Vec<usize>,
    /// Which parameters backward has reported finished.
    done: Vec<bool>,
    /// Bucket `k` holds `params[bounds[k]..bounds[k + 1]]`.
    bounds: Vec<usize>,
    /// Buckets started so far.
    started: usize,
    /// Where the next report is likely to be found in `params`.
    hint: usize,
    /// A parameter reported twice may be shared by two layers, and its
    /// gradient not finished after the first: reports are then ignored.
    shared: bool,
    weight: T,
    /// This rank's share of every parameter whose sum it needs: the whole
    /// of each, or for a sharded optimizer's step its own share, each bucket
    /// then summed by a reduce-scatter, its values laid out rank by rank,
    /// and the extras by a sum of their own.
    share: Share,
    /// Gradient values (`params`' total) and then `extras` values: the
    /// caller's, then one per parameter, 1 where this rank's backward
    /// reached it (summed, 0 means no rank's did).
    total: usize,
    extras: usize,
    /// The values sent and the sums received, as `f64` words holding `total`
    /// values of `T`; they stay put (never resized) while sums are under way.
    send: Vec<f64>,
    recv: Vec<f64>,
    /// Their start, as values: slices are made over one bucket's span at a
    /// time, never over spans whose sums are under way.
    send_at: *mut T,
    recv_at: *mut T,
}

thread_local! {
    /// The send and receive buffers, kept from step to step on this thread
    /// (a step's gradients are megabytes: allocating them every step would
    /// cost page faults).
    static BUFFERS: RefCell<(Vec<f64>, Vec<f64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `words` grown to hold `len` values of `T`; where they start.
fn room_for<T: Float>(words: &mut Vec<f64>, len: usize) -> *mut T {
    let need = (len * size_of::<T>()).div_ceil(size_of::<f64>());
    if words.len() < need {
        words.resize(need, 0.0);
    }
    words.as_mut_ptr().cast::<T>()
}

/// `len` values at `start + range.start`.
///
/// # Safety
/// `start` comes from [`room_for`] with at least `range.end` values, `T` is
/// `f32` or `f64` (no more aligned than the `f64` words, every bit pattern a
/// value), and nothing else reaches that range while the slice lives.
unsafe fn span_mut<'a, T>(start: *mut T, range: std::ops::Range<usize>) -> &'a mut [T] {
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts_mut(start.add(range.start), range.len()) }
}

impl<'g, T: Float> Buckets<'g, T> {
    /// Plans the buckets of `model`'s trainable parameters, with room for
    /// `extras` values summed in the last bucket; with `sharded`, only this
    /// rank's [`Share`] of each gradient is summed (see [`Buckets::finish`]).
    pub(crate) fn new(
        group: &'g dyn Collective,
        model: &dyn Parameters<T>,
        weight: f64,
        cap_bytes: f64,
        extras: usize,
        sharded: bool,
    ) -> Self {
        // A parameter two layers share is summed once (twice, its sum would
        // move twice the bytes), but its gradient is final only after the
        // last layer's backward: reports are then not to be trusted.
        let (mut params, mut visits): (Vec<Param<T>>, usize) = (Vec::new(), 0);
        model.visit_params(&mut |_, p| visits += usize::from(p.is_trainable()));
        nn_core::visit_distinct_params(model, &mut |_, p| {
            if p.is_trainable() {
                params.push(p.clone())
            }
        });
        params.reverse();
        let shared = visits > params.len();
        let mut offsets = Vec::with_capacity(params.len());
        let mut bounds = vec![0];
        let (mut at, mut bucket_start) = (0, 0);
        for (i, p) in params.iter().enumerate() {
            offsets.push(at);
            at += p.len();
            if ((at - bucket_start) * size_of::<T>()) as f64 >= cap_bytes && i + 1 < params.len() {
                bounds.push(i + 1);
                bucket_start = at;
            }
        }
        bounds.push(params.len());
        super::check_element::<T>();
        let extras = extras + params.len();
        let (mut send, mut recv) = BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
        let (send_at, recv_at) = (
            room_for(&mut send, at + extras),
            room_for(&mut recv, at + extras),
        );
        Buckets {
            group,
            done: vec![false; params.len()],
            hint: 0,
            shared,
            offsets,
            bounds,
            started: 0,
            weight: T::lit(weight),
            share: if sharded {
                Share::new(group.rank(), group.size())
            } else {
                Share::WHOLE
            },
            params,
            total: at + extras,
            extras,
            send,
            recv,
            send_at,
            recv_at,
        }
    }

    /// Backward has finished `param`'s gradient (a `&Param<T>`; see
    /// [`nn_core::distributed::with_gradients_ready`]): starts every bucket
    /// now complete, in order, except the last. A report repeated, or of a
    /// parameter this plan lacks, changes nothing.
    pub(crate) fn ready(&mut self, param: &dyn Any) {
        let Some(p) = param.downcast_ref::<Param<T>>() else {
            return;
        };
        if self.shared {
            return;
        }
        let n = self.params.len();
        // A layer reports its parameters in visit order, `params` holds them
        // reversed: look outwards from the last one found, either way.
        let Some(i) = (0..n)
            .flat_map(|d| [self.hint + d, self.hint + n - d])
            .map(|i| i % n.max(1))
            .take(2 * n)
            .find(|&i| self.params[i].same_as(p))
        else {
            return;
        };
        self.done[i] = true;
        self.hint = i;
        let last = self.bounds.len() - 2;
        while self.started < last
            && self.done[self.bounds[self.started]..self.bounds[self.started + 1]]
                .iter()
                .all(|&d| d)
        {
            self.start(self.started, &[]);
        }
        self.group.progress_sums();
    }

    /// Bucket `k`'s values in the flat buffers (the last holds the extras).
    fn span(&self, k: usize) -> std::ops::Range<usize> {
        let grads = self.total - self.extras;
        let at = |i: usize| self.offsets.get(i).copied().unwrap_or(grads);
        let end = if k + 2 == self.bounds.len() {
            self.total
        } else {
            at(self.bounds[k + 1])
        };
        at(self.bounds[k])..end
    }

    /// Bucket `k`'s gradient values in the flat buffers (its span without
    /// the extras).
    fn grad_span(&self, k: usize) -> std::ops::Range<usize> {
        let span = self.span(k);
        let grads = self.total - self.extras;
        span.start..span.end.min(grads)
    }

    /// Where bucket `k` holds each rank's share of each of its parameters
    /// (with one share, each parameter whole, one after another): calls
    /// `place(r, i, range, at)` for rank `r`'s share `range` of parameter
    /// `i`, at `at` in the flat buffers, rank by rank; returns the values of
    /// each rank's block.
    fn blocks(
        &self,
        k: usize,
        mut place: impl FnMut(usize, usize, std::ops::Range<usize>, usize),
    ) -> Vec<usize> {
        let mut at = self.grad_span(k).start;
        let (first, end) = (self.bounds[k], self.bounds[k + 1]);
        (0..self.share.ranks())
            .map(|r| {
                let block_start = at;
                for i in first..end {
                    let range = self.share.range_of(r, self.params[i].len());
                    let n = range.len();
                    place(r, i, range, at);
                    at += n;
                }
                at - block_start
            })
            .collect()
    }

    /// Copies bucket `k`'s gradients (times the weight; then `extras`, for
    /// the last) into the send buffer and starts its sum.
    fn start(&mut self, k: usize, extras: &[T]) {
        let span = self.span(k);
        // SAFETY: this bucket's span, sized in `new`; no sum of it is under
        // way yet, and earlier buckets' spans are not touched.
        let (send, recv) = unsafe {
            (
                span_mut(self.send_at, span.clone()),
                span_mut(self.recv_at, span.clone()),
            )
        };
        let tail = send.len() - extras.len();
        send[tail..].copy_from_slice(extras);
        let weight = self.weight;
        let pack = |p: &Param<T>, range: std::ops::Range<usize>, dst: &mut [T]| match &*p.grad() {
            Some(g) => match g.as_slice() {
                Some(g) => dst
                    .iter_mut()
                    .zip(&g[range])
                    .for_each(|(d, &v)| *d = v * weight),
                None => dst
                    .iter_mut()
                    .zip(g.iter().skip(range.start))
                    .for_each(|(d, &v)| *d = v * weight),
            },
            None => dst.fill(T::zero()),
        };
        let counts = self.blocks(k, |_, i, range, at| {
            let at = at - span.start;
            let n = range.len();
            pack(&self.params[i], range, &mut send[at..at + n]);
        });
        if self.share.is_whole() {
            // SAFETY: both buffers are this struct's, not resized or touched
            // again until `wait_sums` (in `finish`, or on drop) has returned.
            unsafe { super::start_sum(self.group, send, recv) };
        } else {
            let grads = self.grad_span(k).len();
            let (send, recv) = (&send[..], &mut recv[..]);
            // SAFETY: as above; the gradients' and the extras' spans are
            // disjoint.
            unsafe {
                super::start_reduce_scatter(
                    self.group,
                    &send[..grads],
                    &mut recv[..grads],
                    &counts,
                );
                if tail < send.len() {
                    super::start_sum(self.group, &send[tail..], &mut recv[tail..]);
                }
            }
        }
        self.started += 1;
    }

    /// Starts what is left, waits for every sum, and writes each gradient as
    /// `scale(extras summed) · Σ_ranks weight · grad`; `extras` comes back
    /// summed. A parameter without a gradient counts as zeros, so ranks whose
    /// batch left one untouched still agree; one that no rank's backward
    /// reached keeps no gradient, as in one process.
    pub(crate) fn finish(mut self, extras: &mut [T], scale: impl FnOnce(&[T]) -> f64) {
        let n = self.params.len();
        assert_eq!(
            extras.len() + n,
            self.extras,
            "Buckets::finish: planned for other extras"
        );
        let last = self.bounds.len() - 2;
        while self.started < last {
            self.start(self.started, &[]);
        }
        let reached = self.params.iter().map(|p| match p.has_grad() {
            true => T::one(),
            false => T::zero(),
        });
        let tail: Vec<T> = extras.iter().copied().chain(reached).collect();
        self.start(last, &tail);
        self.group.wait_sums();
        self.started = 0;
        // SAFETY: every sum is done; the whole receive buffer is ours again.
        let recv = unsafe { span_mut(self.recv_at, 0..self.total) };
        let tail = &recv[self.total - self.extras..];
        extras.copy_from_slice(&tail[..extras.len()]);
        // A parameter no rank's backward reached keeps no gradient, as in
        // one process (the optimizers skip it).
        let reached: Vec<bool> = tail[extras.len()..]
            .iter()
            .map(|&r| r != T::zero())
            .collect();
        let s = T::lit(scale(extras));
        let unpack = |p: &Param<T>, range: std::ops::Range<usize>, src: &[T]| {
            // A parameter this rank's backward did not reach gets the sum
            // too (in the buffer `zero_grad` kept, or a new one).
            let mut g = nn_core::layers::grad_buffer(p);
            match g.as_slice_mut() {
                Some(g) => g[range].iter_mut().zip(src).for_each(|(d, &v)| *d = v * s),
                None => g
                    .iter_mut()
                    .skip(range.start)
                    .zip(src)
                    .for_each(|(d, &v)| *d = v * s),
            }
        };
        let me = self.share.rank();
        for k in 0..self.bounds.len() - 1 {
            self.blocks(k, |rank, i, range, at| {
                if rank == me && reached[i] {
                    let n = range.len();
                    unpack(&self.params[i], range, &recv[at..at + n]);
                }
            });
        }
    }
}

impl<T: Float> Drop for Buckets<'_, T> {
    fn drop(&mut self) {
        // A step that unwound mid-backward may have sums under way into
        // these buffers: they must end before the buffers go.
        if self.started > 0 {
            self.group.wait_sums();
        }
        let buffers = (
            std::mem::take(&mut self.send),
            std::mem::take(&mut self.recv),
        );
        BUFFERS.with(|b| *b.borrow_mut() = buffers);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use nn_core::ndarray::ArrayD;

    use super::*;

    /// One rank that records the lengths of the sums started and waited for.
    #[derive(Default)]
    struct Recorder {
        started: RefCell<Vec<usize>>,
        waits: RefCell<usize>,
    }

    impl Collective for Recorder {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            1
        }
        fn sum_f32(&self, _: &mut [f32]) {}
        fn sum_f64(&self, _: &mut [f64]) {}
        fn broadcast_f32(&self, _: &mut [f32]) {}
        fn broadcast_f64(&self, _: &mut [f64]) {}
        unsafe fn start_sum_f32(&self, send: *const f32, recv: *mut f32, len: usize) {
            self.started.borrow_mut().push(len);
            // SAFETY: the caller's promise.
            unsafe { std::ptr::copy_nonoverlapping(send, recv, len) };
        }
        fn wait_sums(&self) {
            *self.waits.borrow_mut() += 1;
        }
    }

    fn param(len: usize, grad: f32) -> Param<f32> {
        let p = Param::new(ArrayD::<f32>::zeros(vec![len]));
        *p.grad_mut() = Some(ArrayD::from_elem(vec![len], grad));
        p
    }

    #[test]
    fn buckets_start_as_their_last_parameter_is_reported_and_the_last_waits() {
        // Visited a, b, c, d: backward finishes them d, c, b, a. Buckets of
        // at least 40 bytes (10 values): [d, c] (4 + 8), [b] (30), [a] (2) with
        // the two extra values.
        let model = vec![
            ("a", param(2, 1.0)),
            ("b", param(30, 2.0)),
            ("c", param(8, 3.0)),
            ("d", param(4, 4.0)),
        ];
        let group = Recorder::default();
        let mut sums = Buckets::new(&group, &model, 0.5, 40.0, 2, false);
        sums.ready(&model[3].1);
        assert!(group.started.borrow().is_empty(), "c is still missing");
        sums.ready(&model[2].1);
        assert_eq!(*group.started.borrow(), [12]);
        sums.ready(&model[1].1);
        assert_eq!(*group.started.borrow(), [12, 30]);
        sums.ready(&model[0].1);
        assert_eq!(
            *group.started.borrow(),
            [12, 30],
            "the last waits for finish"
        );
        let mut extras = [4.0, 8.0];
        sums.finish(&mut extras, |e| 1.0 / e[0] as f64);
        // The last: a's 2 values, the 2 extras, a reached flag per parameter.
        assert_eq!(*group.started.borrow(), [12, 30, 8]);
        assert_eq!(*group.waits.borrow(), 1);
        // One rank: each gradient times the weight 0.5, times 1 / 4.
        for (i, (_, p)) in model.iter().enumerate() {
            let want = (i + 1) as f32 * 0.5 / 4.0;
            assert!(p.grad().as_ref().unwrap().iter().all(|&g| g == want), "{i}");
        }
    }

    #[test]
    fn a_parameter_seen_twice_is_summed_after_backward() {
        // Two layers sharing `w`: its gradient is not final after the first.
        let w = param(16, 1.0);
        let model = vec![
            ("w", w.clone()),
            ("b", param(16, 1.0)),
            ("w_again", w.clone()),
        ];
        let group = Recorder::default();
        let mut sums = Buckets::new(&group, &model, 1.0, 0.0, 0, false);
        sums.ready(&w);
        sums.ready(&model[1].1);
        assert!(group.started.borrow().is_empty());
        sums.finish(&mut [], |_| 1.0);
        // Buckets of one parameter each, every one started by `finish`, and
        // `w` sent once: two parameters, not three (the last with their two
        // reached flags).
        assert_eq!(*group.started.borrow(), [16, 18]);
    }

    #[test]
    fn without_reports_everything_goes_in_one_message_after_backward() {
        let model = vec![("a", param(3, 1.0)), ("b", param(5, 1.0))];
        let group = Recorder::default();
        let sums = Buckets::new(&group, &model, 1.0, f64::INFINITY, 1, false);
        sums.finish(&mut [1.0], |_| 1.0);
        // 3 + 5 values, the extra, two reached flags.
        assert_eq!(*group.started.borrow(), [11]);
    }
}
