//! The conformance suite (`conformance/`) against every provider, one module each:
//! `local` runs real bubblewrap sandboxes; `docker` runs against a real Docker Engine
//! (`providers/docker_engine.rs`; `scripts/docker-engine.sh` sets it up); `modal` and
//! `railway` run against fakes of those services' wire protocols (`fakes/`), which
//! run the commands for real; `live` (ignored, `make smoke-provider`) runs the suite
//! against the real service with an operator's credentials. `deployment/` checks
//! what running in production relies on: the refused listens and HTTPS, and two
//! backends sharing one provider's sandboxes.

mod conformance;
mod fakes;

mod providers {
    pub mod docker;
    pub mod docker_engine;
    pub mod live;
    pub mod local;
    pub mod modal;
    pub mod modal_sleep;
    pub mod modal_wire;
    pub mod railway;
    pub mod railway_sleep;
}

mod deployment {
    pub mod image;
    pub mod listen;
    pub mod local_lock;
    pub mod support;
    pub mod two_backends;
}
