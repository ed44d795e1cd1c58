//! A MAC address, as a value that prints, parses and serialises in the usual
//! `aa:bb:cc:dd:ee:ff` form (records written before MACs were typed hold that same string).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A locally administered unicast MAC derived from `seed`, so that an object re-created
    /// from the same seed gets the same MAC (neighbour entries that point at it stay right).
    pub fn stable_local(seed: &[u8]) -> Mac {
        let b = super::names::fnv1a(seed).to_be_bytes();
        // Bit 1 of the first octet: locally administered; bit 0 cleared: unicast.
        Mac([(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]])
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Mac> {
        <[u8; 6]>::try_from(bytes).ok().map(Mac)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts
                .next()
                .ok_or_else(|| format!("invalid MAC address {s:?}"))?;
            if part.len() != 2 {
                return Err(format!("invalid MAC address {s:?}"));
            }
            *byte =
                u8::from_str_radix(part, 16).map_err(|_| format!("invalid MAC address {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("invalid MAC address {s:?}"));
        }
        Ok(Mac(out))
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Mac, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_local_is_deterministic_local_and_unicast() {
        let a = Mac::stable_local(b"eth0");
        assert_eq!(a, Mac::stable_local(b"eth0"));
        assert_ne!(a, Mac::stable_local(b"eth1"));
        assert_eq!(a.0[0] & 0x03, 0x02);
    }

    #[test]
    fn parses_what_it_prints() {
        let mac = Mac([0x02, 0xab, 0, 1, 0xfe, 0x10]);
        assert_eq!(mac.to_string(), "02:ab:00:01:fe:10");
        assert_eq!("02:ab:00:01:fe:10".parse::<Mac>().unwrap(), mac);
        assert!("02:ab:00:01:fe".parse::<Mac>().is_err());
        assert!("02:ab:00:01:fe:10:11".parse::<Mac>().is_err());
        assert!("zz:ab:00:01:fe:10".parse::<Mac>().is_err());
    }

    #[test]
    fn serialises_as_its_text() {
        let mac = Mac([0x02, 0xab, 0, 1, 0xfe, 0x10]);
        let json = serde_json::to_string(&mac).unwrap();
        assert_eq!(json, "\"02:ab:00:01:fe:10\"");
        assert_eq!(serde_json::from_str::<Mac>(&json).unwrap(), mac);
        assert!(serde_json::from_str::<Mac>("\"02:ab\"").is_err());
    }
}
