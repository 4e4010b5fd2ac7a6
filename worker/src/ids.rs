//! Fresh ids for sessions, prompts and turns: random UUIDs from the runtime's
//! cryptographic generator (`crypto.randomUUID()`), so they are unguessable and never
//! contain the `.` that runner tokens use as a separator.

use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Function, Reflect, global};

/// A new random id, such as `3b241101-e2bb-4255-8caf-4136c566a962`.
pub fn new_id() -> worker::Result<String> {
    let crypto = Reflect::get(&global(), &JsValue::from_str("crypto"))?;
    let random_uuid: Function = Reflect::get(&crypto, &JsValue::from_str("randomUUID"))?
        .dyn_into()
        .map_err(|_| worker::Error::RustError("crypto.randomUUID is not available".into()))?;
    random_uuid
        .call0(&crypto)?
        .as_string()
        .ok_or_else(|| worker::Error::RustError("crypto.randomUUID returned no string".into()))
}
