//! Rollback as a guard: each completed step of a verb registers how to undo it; if the verb
//! returns before `disarm`, the undo steps run in reverse order when the guard is dropped.

/// One way back: what it undoes (for the log), and how.
type Undo<'a> = (&'static str, Box<dyn FnOnce() + 'a>);

pub struct Rollback<'a> {
    undo: Vec<Undo<'a>>,
}

impl<'a> Rollback<'a> {
    pub fn new() -> Rollback<'a> {
        Rollback { undo: Vec::new() }
    }

    /// Registers how to undo a step that completed; `what` names it in the log.
    pub fn push(&mut self, what: &'static str, undo: impl FnOnce() + 'a) {
        self.undo.push((what, Box::new(undo)));
    }

    /// The verb succeeded: nothing is undone.
    pub fn disarm(mut self) {
        self.undo.clear();
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        while let Some((what, undo)) = self.undo.pop() {
            log::debug!("rolling back: {what}");
            undo();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn undoes_in_reverse_unless_disarmed() {
        let log = RefCell::new(Vec::new());
        {
            let mut rollback = Rollback::new();
            rollback.push("one", || log.borrow_mut().push(1));
            rollback.push("two", || log.borrow_mut().push(2));
        }
        assert_eq!(*log.borrow(), vec![2, 1]);
        let mut rollback = Rollback::new();
        rollback.push("three", || log.borrow_mut().push(3));
        rollback.disarm();
        assert_eq!(*log.borrow(), vec![2, 1]);
    }
}
