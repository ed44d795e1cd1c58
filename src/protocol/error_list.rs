//! The errors of a teardown that goes on past failures: one missing route must never keep the
//! rest from being cleaned, and the caller still hears of every failure.

use super::error::{CniError, CniResult};

#[derive(Debug, Default)]
pub struct ErrorList(Vec<CniError>);

impl ErrorList {
    pub fn new() -> ErrorList {
        ErrorList::default()
    }

    pub fn push(&mut self, error: impl Into<CniError>) {
        self.0.push(error.into());
    }

    /// Keeps the error of `outcome`, if any, and the value otherwise.
    pub fn note<T, E: Into<CniError>>(&mut self, outcome: Result<T, E>) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    pub fn append(&mut self, mut other: ErrorList) {
        self.0.append(&mut other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One error for all of them: the first one's code and errno, every message, every
    /// error's details (each after its message when there are several).
    pub fn into_result(self) -> CniResult<()> {
        let mut iter = self.0.into_iter();
        let Some(first) = iter.next() else {
            return Ok(());
        };
        let rest: Vec<CniError> = iter.collect();
        if rest.is_empty() {
            return Err(first);
        }
        let mut details: Vec<String> = Vec::new();
        if !first.details.is_empty() {
            details.push(first.details.clone());
        }
        details.extend(
            rest.iter()
                .filter(|e| !e.details.is_empty())
                .map(|e| format!("{}: {}", e.msg, e.details)),
        );
        let messages: Vec<&str> = rest.iter().map(|e| e.msg.as_str()).collect();
        Err(CniError {
            msg: format!("{}; also: {}", first.msg, messages.join("; ")),
            details: details.join("; "),
            ..first
        })
    }
}

impl Extend<CniError> for ErrorList {
    fn extend<I: IntoIterator<Item = CniError>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for ErrorList {
    type Item = CniError;
    type IntoIter = std::vec::IntoIter<CniError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_message_under_the_first_code() {
        assert!(ErrorList::new().into_result().is_ok());
        let mut errors = ErrorList::new();
        errors.push(CniError::new(5, "first"));
        assert_eq!(errors.note(Ok::<_, CniError>(3)), Some(3));
        errors.note(Err::<(), _>(CniError::new(7, "second")));
        let err = errors.into_result().unwrap_err();
        assert_eq!(err.code, 5);
        assert_eq!(err.msg, "first; also: second");
    }

    #[test]
    fn keeps_every_errors_details_and_the_first_errno() {
        let mut errors = ErrorList::new();
        errors.push(CniError {
            errno: Some(16),
            ..CniError::new(999, "removing shim mvh-eth0").with_details("busy")
        });
        errors.push(CniError::new(5, "removing owners/10.0.0.5").with_details("read-only"));
        errors.push(CniError::new(999, "removing the route to 10.0.0.5"));
        let err = errors.into_result().unwrap_err();
        assert_eq!((err.code, err.errno), (999, Some(16)));
        assert_eq!(err.details, "busy; removing owners/10.0.0.5: read-only");
    }
}
