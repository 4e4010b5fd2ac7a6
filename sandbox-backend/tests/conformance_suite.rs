//! The conformance suite (`conformance/`) against every provider, one module each:
//! `local` runs real bubblewrap sandboxes; `docker` runs against a real Docker Engine
//! (`providers/docker_engine.rs`; `scripts/docker-engine.sh` sets it up); `modal` and
//! `railway` run against fakes of those services' wire protocols (`fakes/`), which
//! run the commands for real.

mod conformance;
mod fakes;

mod providers {
    pub mod docker;
    pub mod docker_engine;
    pub mod local;
    pub mod modal;
    pub mod railway;
}
