//! Developer tools shared by the Makefile and the integration tests, so both use one renderer:
//! [`render`] fills the Envoy template in `envoy/` and [`token`] mints demo JWTs.

pub mod render;
pub mod token;
