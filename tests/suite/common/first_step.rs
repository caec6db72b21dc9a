//! For the tests of parameters no backward reaches: a callback that, after
//! the first optimizer step, keeps one parameter's value and switches off
//! the part of the model that used it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use nn::ndarray::ArrayD;
use nn::train::{BatchLogs, Callback, Context, Control, TrainError};
use nn::Float;

/// After step 0: `weight` gets the value of the parameter named `name`, and
/// `in_use` is set to `false`.
pub struct OffAfterFirstStep<T: Float> {
    pub name: &'static str,
    pub weight: Rc<RefCell<Option<ArrayD<T>>>>,
    pub in_use: Rc<Cell<bool>>,
}

impl<T: Float> Callback<T> for OffAfterFirstStep<T> {
    fn on_train_batch_end(
        &mut self,
        logs: &BatchLogs,
        ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        if logs.step == 0 {
            ctx.params.visit_params(&mut |name, p| {
                if name == self.name {
                    *self.weight.borrow_mut() = Some(p.value().clone());
                }
            });
            self.in_use.set(false);
        }
        Ok(Control::Continue)
    }
}
