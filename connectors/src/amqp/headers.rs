//! What a dead letter keeps of a delivery: its routing, properties and headers as a JSON
//! object.

use lapin::types::AMQPValue;

/// The delivery's routing and properties, and its headers, as a JSON object.
pub fn headers_json(d: &lapin::message::Delivery) -> String {
    let mut out = serde_json::Map::new();
    out.insert("exchange".into(), d.exchange.as_str().into());
    out.insert("routing_key".into(), d.routing_key.as_str().into());
    out.insert("redelivered".into(), d.redelivered.into());
    let p = &d.properties;
    if let Some(id) = p.message_id() {
        out.insert("message_id".into(), id.as_str().into());
    }
    if let Some(t) = p.content_type() {
        out.insert("content_type".into(), t.as_str().into());
    }
    if let Some(t) = p.timestamp() {
        out.insert("timestamp".into(), (*t).into());
    }
    if let Some(app) = p.app_id() {
        out.insert("app_id".into(), app.as_str().into());
    }
    if let Some(h) = p.headers() {
        let headers = h
            .inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
            .collect();
        out.insert("headers".into(), serde_json::Value::Object(headers));
    }
    serde_json::Value::Object(out).to_string()
}

fn value_json(v: &AMQPValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AMQPValue::Boolean(b) => Value::from(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(n) => Value::from(*n),
        AMQPValue::Double(n) => Value::from(*n),
        AMQPValue::ShortString(s) => Value::from(s.as_str()),
        AMQPValue::LongString(s) => Value::from(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(
            t.inner()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
                .collect(),
        ),
        other => Value::from(format!("{other:?}")),
    }
}
