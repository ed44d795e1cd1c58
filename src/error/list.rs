//! The errors of a teardown that goes on past failures: one missing route must never keep the
//! rest from being cleaned, and the caller still hears of every failure.

use super::{Error, Result};

#[derive(Debug, Default)]
pub struct ErrorList(Vec<Error>);

impl ErrorList {
    pub fn new() -> ErrorList {
        ErrorList::default()
    }

    pub fn push(&mut self, error: impl Into<Error>) {
        self.0.push(error.into());
    }

    /// Keeps the error of `outcome`, if any, and the value otherwise.
    pub fn note<T, E: Into<Error>>(&mut self, outcome: Result<T, E>) -> Option<T> {
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

    /// One error for all of them: the first one's kind and errno, every message, every
    /// error's details (each after its message when there are several).
    pub fn into_result(self) -> Result<()> {
        let mut iter = self.0.into_iter();
        let Some(first) = iter.next() else {
            return Ok(());
        };
        let rest: Vec<Error> = iter.collect();
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
        Err(Error {
            msg: format!("{}; also: {}", first.msg, messages.join("; ")),
            details: details.join("; "),
            ..first
        })
    }
}

impl Extend<Error> for ErrorList {
    fn extend<I: IntoIterator<Item = Error>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for ErrorList {
    type Item = Error;
    type IntoIter = std::vec::IntoIter<Error>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[test]
    fn keeps_every_message_under_the_first_kind() {
        assert!(ErrorList::new().into_result().is_ok());
        let mut errors = ErrorList::new();
        errors.push(Error::io("first"));
        assert_eq!(errors.note(Ok::<_, Error>(3)), Some(3));
        errors.note(Err::<(), _>(Error::config("second")));
        let err = errors.into_result().unwrap_err();
        assert_eq!(err.kind, Kind::Io);
        assert_eq!(err.msg, "first; also: second");
    }

    #[test]
    fn keeps_every_errors_details_and_the_first_errno() {
        let mut errors = ErrorList::new();
        errors.push(Error {
            errno: Some(16),
            ..Error::internal("removing shim mvh-eth0").with_details("busy")
        });
        errors.push(Error::io("removing owners/10.0.0.5").with_details("read-only"));
        errors.push(Error::internal("removing the route to 10.0.0.5"));
        let err = errors.into_result().unwrap_err();
        assert_eq!((err.kind, err.errno), (Kind::Internal, Some(16)));
        assert_eq!(err.details, "busy; removing owners/10.0.0.5: read-only");
    }
}
