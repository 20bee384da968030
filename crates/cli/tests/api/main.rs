//! Black-box tests: a real server on a loopback port, driven over HTTP.

mod journeys;
mod mail;
mod pages;
mod password;
mod policy;
mod refusals;
mod support;
