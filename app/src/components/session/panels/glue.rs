//! Rust's view of `glue.js`: the vendored xterm.js and noVNC, loaded on first use.
//! The objects are JavaScript's; these are the few methods the panels call.

use wasm_bindgen::prelude::*;

/// What the terminal calls with each keystroke (or paste).
pub type InputCallback = Closure<dyn FnMut(String)>;
/// What the desktop calls with its state (`ready`, `closed`) and a reason.
pub type StateCallback = Closure<dyn FnMut(String, String)>;

#[wasm_bindgen(module = "/src/components/session/panels/glue.js")]
extern "C" {
    /// An xterm.js terminal drawn in an element.
    pub type TerminalView;

    #[wasm_bindgen(catch, js_name = openTerminal)]
    async fn open_terminal_js(
        element: &web_sys::HtmlElement,
        on_input: &Closure<dyn FnMut(String)>,
        read_only: bool,
    ) -> Result<JsValue, JsValue>;

    /// Shell output; xterm keeps the array until it has drawn it.
    #[wasm_bindgen(method)]
    pub fn write(this: &TerminalView, bytes: &js_sys::Uint8Array);

    #[wasm_bindgen(method, js_name = write)]
    pub fn write_text(this: &TerminalView, text: &str);

    /// Clears screen and scroll-back (before a reconnection replays them).
    #[wasm_bindgen(method)]
    pub fn reset(this: &TerminalView);

    /// Fits the grid to the element: `[cols, rows]`.
    #[wasm_bindgen(method)]
    pub fn fit(this: &TerminalView) -> Vec<u16>;

    #[wasm_bindgen(method)]
    pub fn focus(this: &TerminalView);

    #[wasm_bindgen(method)]
    pub fn dispose(this: &TerminalView);

    /// noVNC's RFB client.
    pub type Rfb;

    #[wasm_bindgen(catch, js_name = openDesktop)]
    async fn open_desktop_js(
        element: &web_sys::HtmlElement,
        url: &str,
        view_only: bool,
        on_state: &Closure<dyn FnMut(String, String)>,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method)]
    pub fn disconnect(this: &Rfb);
}

/// Loads xterm.js and opens a terminal in `element`; `on_input` gets keystrokes.
pub async fn open_terminal(
    element: &web_sys::HtmlElement,
    on_input: &Closure<dyn FnMut(String)>,
    read_only: bool,
) -> Result<TerminalView, String> {
    open_terminal_js(element, on_input, read_only)
        .await
        .map(JsCast::unchecked_into)
        .map_err(describe)
}

/// Loads noVNC and connects an RFB client in `element` to `url`; `on_state` gets
/// `("ready", "")` and `("closed", reason)`.
pub async fn open_desktop(
    element: &web_sys::HtmlElement,
    url: &str,
    view_only: bool,
    on_state: &Closure<dyn FnMut(String, String)>,
) -> Result<Rfb, String> {
    open_desktop_js(element, url, view_only, on_state)
        .await
        .map(JsCast::unchecked_into)
        .map_err(describe)
}

fn describe(error: JsValue) -> String {
    js_sys::Reflect::get(&error, &"message".into())
        .ok()
        .and_then(|message| message.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "the panel's library did not load".to_owned())
}
