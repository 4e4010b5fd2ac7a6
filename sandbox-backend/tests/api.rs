//! The sandbox backend's HTTP API, driven through `app()` without sockets, against
//! real bubblewrap sandboxes and scripted stand-ins for the runner.

mod api {
    pub mod checkpoints;
    pub mod exec;
    pub mod files;
    pub mod openapi;
    pub mod routes;
    pub mod runner;
    pub mod sleep;
    pub mod support;
}
