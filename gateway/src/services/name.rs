//! The names of the services the gateway supervises: a leaf of its own, because the
//! configuration (which services to run) and the specs (how to run them) both name
//! them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceName {
    Display,
    WindowManager,
    Vnc,
    VncViewOnly,
    Browser,
    Vscode,
}

impl ServiceName {
    pub const ALL: [ServiceName; 6] = [
        ServiceName::Display,
        ServiceName::WindowManager,
        ServiceName::Vnc,
        ServiceName::VncViewOnly,
        ServiceName::Browser,
        ServiceName::Vscode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Display => "display",
            ServiceName::WindowManager => "window_manager",
            ServiceName::Vnc => "vnc",
            ServiceName::VncViewOnly => "vnc_view_only",
            ServiceName::Browser => "browser",
            ServiceName::Vscode => "vscode",
        }
    }
}
