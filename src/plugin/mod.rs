//! The CNI verbs.
