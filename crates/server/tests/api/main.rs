//! Black-box tests: a real server on a loopback port, driven over HTTP.

mod devices;
mod enrollment;
mod forward_auth;
mod journeys;
mod mail;
mod oidc;
mod oidc_flow;
mod oidc_library;
mod openapi;
mod pages;
mod password;
mod policy;
mod refusals;
mod sms;
mod support;
mod support_reset;
