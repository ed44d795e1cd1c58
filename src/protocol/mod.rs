//! The protocol layer: CNI requests, configuration, results, versions and errors.
