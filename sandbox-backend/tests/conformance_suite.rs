//! The conformance suite (`conformance/`) against every provider, one module each:
//! `local` runs real bubblewrap sandboxes; `docker`, `modal` and `railway` run
//! against fakes of those services' wire protocols (`fakes/`), which run the
//! commands for real.

mod conformance;
mod fakes;

mod providers {
    pub mod docker;
    pub mod local;
    pub mod modal;
    pub mod railway;
}
