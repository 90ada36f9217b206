//! Payloads: the serialized values that travel through histories and tasks.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::PayloadError;

/// A serialized value (JSON). Inputs, outputs, heartbeat details and side-effect values are
/// payloads; the engine checks their size against [`Limits::max_payload_bytes`](crate::Limits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(serde_json::Value);

impl Payload {
    /// Serializes `value`.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Payload, PayloadError> {
        serde_json::to_value(value).map(Payload).map_err(|e| PayloadError::Encode { reason: e.to_string() })
    }

    /// Deserializes into `T`; `what` names the value in the error ("input of activity X").
    pub fn decode<T: DeserializeOwned>(&self, what: &str) -> Result<T, PayloadError> {
        T::deserialize(&self.0).map_err(|e| PayloadError::Decode {
            what: what.to_string(),
            expected: std::any::type_name::<T>().to_string(),
            reason: e.to_string(),
        })
    }

    /// The JSON value.
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }

    /// Wraps a JSON value.
    pub fn from_json(v: serde_json::Value) -> Payload {
        Payload(v)
    }

    /// The `null` payload (the unit value).
    pub fn null() -> Payload {
        Payload(serde_json::Value::Null)
    }

    /// Size of the serialized form in bytes.
    pub fn encoded_len(&self) -> usize {
        struct Counter(usize);
        impl std::io::Write for Counter {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut c = Counter(0);
        // Writing a Value to a sink cannot fail.
        let _ = serde_json::to_writer(&mut c, &self.0);
        c.0
    }

    /// Fails with [`PayloadError::TooLarge`] when the payload exceeds `limit` bytes.
    pub fn check_size(&self, what: &str, limit: usize) -> Result<(), PayloadError> {
        let size = self.encoded_len();
        if size > limit {
            return Err(PayloadError::TooLarge { what: what.to_string(), size, limit });
        }
        Ok(())
    }

    /// A short one-line rendering, cut at `max` characters.
    pub fn preview(&self, max: usize) -> String {
        let s = self.0.to_string();
        if s.chars().count() <= max {
            s
        } else {
            let cut: String = s.chars().take(max).collect();
            format!("{cut}…")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size() {
        let p = Payload::encode(&vec![1, 2, 3]).unwrap();
        assert_eq!(p.encoded_len(), "[1,2,3]".len());
        assert_eq!(p.decode::<Vec<i32>>("x").unwrap(), vec![1, 2, 3]);
        let err = p.decode::<String>("input of activity a").unwrap_err();
        assert!(err.to_string().contains("input of activity a"), "{err}");
        assert!(matches!(p.check_size("x", 3), Err(PayloadError::TooLarge { size: 7, .. })));
    }
}

/// Serde for `Option<Payload>` fields that keeps `Some(null)` apart from `None`: `None` is
/// omitted (use with `default` and `skip_serializing_if = "Option::is_none"`), and a present
/// `null` reads back as `Some(Payload::null())`.
pub(crate) mod opt_payload {
    use super::Payload;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(p: &Option<Payload>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => p.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Payload>, D::Error> {
        Ok(Some(Payload(serde_json::Value::deserialize(d)?)))
    }
}

#[cfg(test)]
mod opt_tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_payload")]
        p: Option<Payload>,
    }

    #[test]
    fn some_null_survives_json() {
        for h in
            [Holder { p: None }, Holder { p: Some(Payload::null()) }, Holder { p: Some(Payload::encode(&3).unwrap()) }]
        {
            let back: Holder = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
            assert_eq!(back, h);
        }
    }
}
