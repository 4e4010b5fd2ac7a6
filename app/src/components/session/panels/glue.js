//! The only JavaScript of the panels: it loads the vendored xterm.js and noVNC (ES
//! modules under /vendor/, copied there by scripts/build-app.sh and served from the
//! app's own origin) on first use, so the chat alone never downloads them, and hands
//! Rust small objects with the few methods it calls. Sockets, reconnection and state
//! stay in Rust (see terminal.rs and desktop.rs next to this file).

const XTERM = "/vendor/xterm/xterm.mjs";
const XTERM_FIT = "/vendor/xterm/addon-fit.mjs";
const XTERM_CSS = "/vendor/xterm/xterm.css";
const NOVNC_RFB = "/vendor/novnc/core/rfb.js";

function ensureStylesheet(href) {
  if (!document.querySelector(`link[href="${href}"]`)) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    document.head.append(link);
  }
}

/// An xterm.js terminal drawn in `element`; `onInput` gets what the user types.
class TerminalView {
  constructor(terminal, fit) {
    this.terminal = terminal;
    this.fitAddon = fit;
  }
  /// Shell output (a Uint8Array the caller does not reuse: xterm writes lazily).
  write(bytes) { this.terminal.write(bytes); }
  /// Clears the screen and scroll-back before a reconnection replays them.
  reset() { this.terminal.reset(); }
  /// Fits the grid to the element; answers [cols, rows].
  fit() {
    try { this.fitAddon.fit(); } catch (_) { /* hidden: keep the last size */ }
    return [this.terminal.cols, this.terminal.rows];
  }
  focus() { this.terminal.focus(); }
  dispose() { this.terminal.dispose(); }
}

export async function openTerminal(element, onInput, readOnly) {
  ensureStylesheet(XTERM_CSS);
  const [{ Terminal }, { FitAddon }] = await Promise.all([import(XTERM), import(XTERM_FIT)]);
  const terminal = new Terminal({
    cursorBlink: !readOnly,
    disableStdin: readOnly,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    fontSize: 13,
    scrollback: 5000,
  });
  const fit = new FitAddon();
  terminal.loadAddon(fit);
  terminal.open(element);
  terminal.onData((data) => onInput(data));
  return new TerminalView(terminal, fit);
}

/// noVNC's RFB client on `url` (a WebSocket of RFB bytes), scaled to `element`.
/// `onState(state, reason)` gets "ready" once connected and "closed" (with a reason
/// when it was not asked for) when the connection ends; RFB does not reconnect by
/// itself, the caller makes a new one.
export async function openDesktop(element, url, viewOnly, onState) {
  const { default: RFB } = await import(NOVNC_RFB);
  const rfb = new RFB(element, url, { wsProtocols: ["binary"] });
  rfb.viewOnly = viewOnly;
  rfb.scaleViewport = true;
  rfb.background = "transparent";
  rfb.addEventListener("connect", () => onState("ready", ""));
  rfb.addEventListener("disconnect", (event) =>
    onState("closed", event.detail.clean ? "" : "the connection to the desktop dropped"));
  rfb.addEventListener("securityfailure", (event) =>
    onState("closed", `the desktop refused the connection: ${event.detail.reason || event.detail.status}`));
  return rfb;
}
