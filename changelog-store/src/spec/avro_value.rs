//! Small helpers to build and take apart `apache_avro::types::Value` records.

use crate::error::{Error, Result};
use apache_avro::types::Value;
use std::collections::HashMap;
use std::path::Path;

pub(crate) fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(x) => Value::Union(1, Box::new(f(x))),
    }
}

pub(crate) fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::String(s.clone())).collect())
}

/// A decoded record, fields by name.
pub(crate) struct Fields<'p> {
    map: HashMap<String, Value>,
    path: &'p Path,
}

impl<'p> Fields<'p> {
    pub(crate) fn new(v: Value, path: &'p Path) -> Result<Self> {
        match unwrap_union(v) {
            Value::Record(fields) => Ok(Fields { map: fields.into_iter().collect(), path }),
            other => Err(Error::corrupt(path, format!("expected an Avro record, got {other:?}"))),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).map(unwrap_union)
    }

    fn missing(&self, name: &str) -> Error {
        Error::corrupt(self.path, format!("missing or mistyped field `{name}`"))
    }

    pub(crate) fn record(&mut self, name: &str) -> Result<Fields<'p>> {
        let v = self.take(name).ok_or_else(|| self.missing(name))?;
        Fields::new(v, self.path)
    }

    pub(crate) fn int(&mut self, name: &str) -> Result<i32> {
        self.opt_int(name)?.ok_or_else(|| self.missing(name))
    }

    pub(crate) fn opt_int(&mut self, name: &str) -> Result<Option<i32>> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Int(i)) => Ok(Some(i)),
            Some(_) => Err(self.missing(name)),
        }
    }

    pub(crate) fn long(&mut self, name: &str) -> Result<i64> {
        self.opt_long(name)?.ok_or_else(|| self.missing(name))
    }

    pub(crate) fn opt_long(&mut self, name: &str) -> Result<Option<i64>> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Long(i) | Value::TimestampMillis(i) | Value::TimestampMicros(i)) => Ok(Some(i)),
            Some(Value::Int(i)) => Ok(Some(i as i64)),
            Some(_) => Err(self.missing(name)),
        }
    }

    pub(crate) fn string(&mut self, name: &str) -> Result<String> {
        self.opt_string(name)?.ok_or_else(|| self.missing(name))
    }

    pub(crate) fn opt_string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.missing(name)),
        }
    }

    pub(crate) fn bytes(&mut self, name: &str) -> Result<Vec<u8>> {
        self.opt_bytes(name)?.ok_or_else(|| self.missing(name))
    }

    pub(crate) fn opt_bytes(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bytes(b) | Value::Fixed(_, b)) => Ok(Some(b)),
            Some(_) => Err(self.missing(name)),
        }
    }

    pub(crate) fn opt_strings(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match unwrap_union(v) {
                    Value::String(s) => Ok(s),
                    _ => Err(self.missing(name)),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(self.missing(name)),
        }
    }

    pub(crate) fn opt_longs(&mut self, name: &str) -> Result<Option<Vec<Option<i64>>>> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match unwrap_union(v) {
                    Value::Null => Ok(None),
                    Value::Long(l) => Ok(Some(l)),
                    Value::Int(i) => Ok(Some(i as i64)),
                    _ => Err(self.missing(name)),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(self.missing(name)),
        }
    }
}

fn unwrap_union(v: Value) -> Value {
    match v {
        Value::Union(_, inner) => unwrap_union(*inner),
        other => other,
    }
}
