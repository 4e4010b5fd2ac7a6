//! AES-256-GCM through the runtime's WebCrypto (`crypto.subtle`), with the key from
//! the deployment's `ENCRYPTION_KEY` secret (32 bytes, base64).
//!
//! Every ciphertext has its own random 12-byte IV and is bound to its key id as
//! additional authenticated data, so a ciphertext moved to another row does not
//! decrypt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Array, ArrayBuffer, Function, Object, Promise, Reflect, Uint8Array, global};
use worker::wasm_bindgen_futures::JsFuture;

/// Why encryption or decryption failed (never includes the data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoError(pub String);

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn error(what: &str) -> impl Fn(JsValue) -> CryptoError + '_ {
    move |_| CryptoError(format!("WebCrypto: {what} failed"))
}

fn get(target: &JsValue, name: &str) -> Result<JsValue, CryptoError> {
    Reflect::get(target, &JsValue::from_str(name))
        .map_err(|_| CryptoError(format!("WebCrypto: {name} is missing")))
}

fn subtle() -> Result<JsValue, CryptoError> {
    get(&get(&global(), "crypto")?, "subtle")
}

async fn call(subtle: &JsValue, method: &str, args: &Array) -> Result<JsValue, CryptoError> {
    let function: Function = get(subtle, method)?
        .dyn_into()
        .map_err(|_| CryptoError(format!("WebCrypto: {method} is not a function")))?;
    let promise: Promise = Reflect::apply(&function, subtle, args)
        .map_err(error(method))?
        .dyn_into()
        .map_err(|_| CryptoError(format!("WebCrypto: {method} returned no promise")))?;
    JsFuture::from(promise).await.map_err(error(method))
}

/// Decodes the `ENCRYPTION_KEY` secret: base64 of exactly 32 bytes.
pub fn decode_key(secret: &str) -> Result<Vec<u8>, CryptoError> {
    let bytes = STANDARD
        .decode(secret.trim())
        .map_err(|_| CryptoError("ENCRYPTION_KEY is not base64".into()))?;
    if bytes.len() != 32 {
        return Err(CryptoError(format!(
            "ENCRYPTION_KEY must be 32 bytes (AES-256); it is {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

async fn import(raw: &[u8]) -> Result<JsValue, CryptoError> {
    let subtle = subtle()?;
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"AES-GCM".into()).map_err(error("importKey"))?;
    let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
    let args = Array::new();
    args.push(&"raw".into());
    args.push(&Uint8Array::from(raw));
    args.push(&algorithm);
    args.push(&JsValue::FALSE);
    args.push(&usages);
    call(&subtle, "importKey", &args).await
}

fn params(iv: &[u8], aad: &[u8]) -> Result<Object, CryptoError> {
    let algorithm = Object::new();
    let set = |name: &str, value: &JsValue| {
        Reflect::set(&algorithm, &name.into(), value).map_err(error("AES-GCM parameters"))
    };
    set("name", &"AES-GCM".into())?;
    set("iv", &Uint8Array::from(iv))?;
    set("additionalData", &Uint8Array::from(aad))?;
    Ok(algorithm)
}

fn bytes_of(value: JsValue) -> Result<Vec<u8>, CryptoError> {
    let buffer: ArrayBuffer = value
        .dyn_into()
        .map_err(|_| CryptoError("WebCrypto returned no ArrayBuffer".into()))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Encrypts `plaintext` bound to `aad`: answers `(iv, ciphertext)`, base64.
pub async fn encrypt(
    key: &[u8],
    aad: &str,
    plaintext: &str,
) -> Result<(String, String), CryptoError> {
    let key = import(key).await?;
    let iv = Uint8Array::new_with_length(12);
    let crypto = get(&global(), "crypto")?;
    let fill: Function = get(&crypto, "getRandomValues")?
        .dyn_into()
        .map_err(|_| CryptoError("getRandomValues is missing".into()))?;
    fill.call1(&crypto, &iv).map_err(error("getRandomValues"))?;
    let iv = iv.to_vec();
    let args = Array::of3(
        &params(&iv, aad.as_bytes())?.into(),
        &key,
        &Uint8Array::from(plaintext.as_bytes()),
    );
    let sealed = bytes_of(call(&subtle()?, "encrypt", &args).await?)?;
    Ok((STANDARD.encode(iv), STANDARD.encode(sealed)))
}

/// Decrypts what [`encrypt`] produced with the same `aad`.
pub async fn decrypt(key: &[u8], aad: &str, iv: &str, sealed: &str) -> Result<String, CryptoError> {
    let key = import(key).await?;
    let iv = STANDARD
        .decode(iv)
        .map_err(|_| CryptoError("a stored IV is not base64".into()))?;
    let sealed = STANDARD
        .decode(sealed)
        .map_err(|_| CryptoError("a stored ciphertext is not base64".into()))?;
    let args = Array::of3(
        &params(&iv, aad.as_bytes())?.into(),
        &key,
        &Uint8Array::from(sealed.as_slice()),
    );
    let plain = bytes_of(call(&subtle()?, "decrypt", &args).await?)?;
    String::from_utf8(plain).map_err(|_| CryptoError("a decrypted key is not UTF-8".into()))
}

/// Signs `data` with RSASSA-PKCS1-v1_5 over SHA-256 (JWT's RS256) with a PKCS#8
/// private key (DER), through WebCrypto, so no RSA implementation ships in the
/// Worker. Used for GitHub App JWTs (`crate::github::app`).
pub async fn sign_rs256(pkcs8_der: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let subtle = subtle()?;
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"RSASSA-PKCS1-v1_5".into())
        .map_err(error("importKey"))?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into()).map_err(error("importKey"))?;
    let args = Array::new();
    args.push(&"pkcs8".into());
    args.push(&Uint8Array::from(pkcs8_der));
    args.push(&algorithm);
    args.push(&JsValue::FALSE);
    args.push(&Array::of1(&"sign".into()));
    let key = call(&subtle, "importKey", &args).await?;
    let args = Array::of3(&"RSASSA-PKCS1-v1_5".into(), &key, &Uint8Array::from(data));
    bytes_of(call(&subtle, "sign", &args).await?)
}
