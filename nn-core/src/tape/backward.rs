//! The reverse pass: one walk over the tape, un-broadcasting and accumulating
//! gradients in one place.

use ndarray::ArrayD;
use smallvec::SmallVec;

use super::{accumulate, Node, Tape, Value, ValueRef};
use crate::kernels::broadcast::sum_to_shape;
use crate::Float;

impl<T: Float> Tape<T> {
    #[track_caller]
    pub(super) fn backward_from(&self, root: usize, seed: ArrayD<T>) {
        let retain = self.inner.retain_graph.get();
        let mut leaf_grads = Vec::new();
        {
            let nodes = self.nodes();
            if !nodes[root].requires_grad {
                return;
            }
            let mut grads: Vec<Option<ArrayD<T>>> = Vec::with_capacity(root + 1);
            grads.resize_with(root + 1, || None);
            grads[root] = Some(seed);
            let mut consumed = self.inner.consumed.borrow_mut();
            if consumed.len() < nodes.len() {
                consumed.resize(nodes.len(), false);
            }
            for i in (0..=root).rev() {
                let Some(g) = grads[i].take() else { continue };
                let node = &nodes[i];
                if node.op.is_some() {
                    assert!(
                        retain || !consumed[i],
                        "backward: the op `{}` recorded at {} was already gone through by a \
                         backward pass, and a second would add its gradients again; sum the \
                         losses and call backward once, or call tape.retain_graph() first to \
                         accumulate on purpose",
                        node.op.as_ref().map_or("", |op| op.name()),
                        node.at
                    );
                    consumed[i] = true;
                }
                match &node.op {
                    None => leaf_grads.push((i, g)),
                    Some(op) => propagate(&nodes, node, op.as_ref(), &g, &mut grads),
                }
            }
        }
        let nodes = self.nodes();
        let mut stored = self.inner.leaf_grads.borrow_mut();
        for (i, g) in leaf_grads {
            match &nodes[i].value {
                Value::Param(p) => p.accumulate_grad(g),
                Value::Owned(_) => {
                    let mut slot = stored.remove(&i);
                    accumulate(&mut slot, g, "backward");
                    stored.extend(slot.map(|g| (i, g)));
                }
            }
        }
    }
}

/// Sends `g`, the gradient of `node`'s output, to its inputs.
fn propagate<T: Float>(
    nodes: &[Node<T>],
    node: &Node<T>,
    op: &dyn super::Op<T>,
    g: &ArrayD<T>,
    grads: &mut [Option<ArrayD<T>>],
) {
    let need: SmallVec<[bool; 3]> = node
        .inputs
        .iter()
        .map(|&j| nodes[j].requires_grad)
        .collect();
    let vals: SmallVec<[ValueRef<'_, T>; 3]> =
        node.inputs.iter().map(|&j| nodes[j].value.get()).collect();
    let refs: SmallVec<[&ArrayD<T>; 3]> = vals.iter().map(|v| &**v).collect();
    let out = node.value.get();
    let local = op.backward(&refs, &out, g, &need);
    if super::anomaly::anomaly_mode() {
        super::anomaly::check_backward(op.name(), &refs, g, &local, node.at);
    }
    assert!(
        local.len() == node.inputs.len(),
        "{}: backward returned {} gradients for {} inputs",
        op.name(),
        local.len(),
        node.inputs.len()
    );
    for (k, lg) in local.into_iter().enumerate() {
        let (Some(lg), true) = (lg, need[k]) else {
            continue;
        };
        let shape = refs[k].shape();
        let lg = sum_to_shape(lg, shape);
        assert!(
            lg.shape() == shape,
            "{}: backward returned a gradient of shape {:?} for an input of shape {shape:?}",
            op.name(),
            lg.shape()
        );
        accumulate(&mut grads[node.inputs[k]], lg, op.name());
    }
}
