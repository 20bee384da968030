//! The JSON API and the pages, driven over HTTP against a server on a loopback port.

mod admin_console;
mod admin_import;
mod admin_rollout;
mod attacks;
mod dev_pages;
mod devices;
mod enrollment;
mod forward_auth;
mod journeys;
mod locales;
mod mail;
mod messages;
mod oidc;
mod oidc_attacks;
mod oidc_flow;
mod oidc_library;
mod oidc_strict;
mod openapi;
mod pages;
mod password;
mod policy;
mod passkeys;
mod refusals;
mod slow_clients;
mod sms;
mod support_reset;
