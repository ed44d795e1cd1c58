//! One way to write a parameterised scenario: a function taking the setup, and a table that
//! turns it into one `#[test]` per setup.
//!
//! ```text
//! cases!(every_path_works {
//!     chained_ipv4: (Chaining::Chained, Family::V4),
//!     interface_ipv4: (Chaining::Interface, Family::V4),
//! });
//! fn every_path_works(chaining: Chaining, family: Family) { ... }
//! ```
//!
//! makes module `every_path_works` with tests `chained_ipv4` and `interface_ipv4`, each calling
//! the function of the same name with its arguments: `cargo test every_path_works::` runs the
//! scenario for every setup, `cargo test chained_ipv4` one setup of every scenario.
//! `cases!(scenario: chained, interface)` is the common table of one argument `Chaining`.

/// See the module documentation.
#[allow(unused_macros)] // Not every test binary has parameterised cases.
macro_rules! cases {
    ($scenario:ident { $($test:ident: ($($arg:expr),* $(,)?)),* $(,)? }) => {
        mod $scenario {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $test() {
                    super::$scenario($($arg),*)
                }
            )*
        }
    };
    ($scenario:ident: chained, interface) => {
        cases!($scenario {
            chained: ($crate::common::Chaining::Chained),
            interface: ($crate::common::Chaining::Interface),
        });
    };
}

#[allow(unused_imports)]
pub(crate) use cases;
