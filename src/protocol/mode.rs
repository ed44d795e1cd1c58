//! The macvlan mode as the configuration spells it (`"mode": "bridge"`): one place for the
//! names, in both directions.

use std::fmt;
use std::str::FromStr;

use crate::system::netlink::MacvlanMode;

/// The modes a configuration may ask for (`source` needs a list of MACs and is not offered).
pub const CONFIGURABLE: [MacvlanMode; 4] = [
    MacvlanMode::Bridge,
    MacvlanMode::Private,
    MacvlanMode::Vepa,
    MacvlanMode::Passthru,
];

fn name(mode: MacvlanMode) -> &'static str {
    match mode {
        MacvlanMode::Private => "private",
        MacvlanMode::Vepa => "vepa",
        MacvlanMode::Bridge => "bridge",
        MacvlanMode::Passthru => "passthru",
        MacvlanMode::Source => "source",
    }
}

impl fmt::Display for MacvlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(name(*self))
    }
}

impl FromStr for MacvlanMode {
    type Err = String;
    /// Only the configurable modes; the error lists them.
    fn from_str(text: &str) -> Result<MacvlanMode, String> {
        CONFIGURABLE
            .into_iter()
            .find(|m| name(*m) == text)
            .ok_or_else(|| {
                format!(
                    "mode {text:?} is invalid: use {}",
                    CONFIGURABLE
                        .map(|m| format!("\"{m}\""))
                        .join(", ")
                        .replacen(", \"passthru\"", " or \"passthru\"", 1)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints() {
        for mode in CONFIGURABLE {
            assert_eq!(mode.to_string().parse::<MacvlanMode>(), Ok(mode));
        }
        let err = "source".parse::<MacvlanMode>().unwrap_err();
        assert_eq!(
            err,
            "mode \"source\" is invalid: use \"bridge\", \"private\", \"vepa\" or \"passthru\""
        );
    }
}
