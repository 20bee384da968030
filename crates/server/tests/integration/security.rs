//! The security suite (issue 18, item 2): one test per threat class, named after the
//! threat, on SQLite and PostgreSQL. Where a threat concerns "every route", the
//! routes are found by enumerating the router (the OpenAPI document for the API, the
//! router's source for the pages), never from a hand-written list.

mod address_budget;
mod busy;
mod cast;
mod cross_site;
mod fixation;
mod guessing;
mod half_signed_in;
mod headers;
mod open_redirects;
mod password_reset;
mod remembered_devices;
mod replay;
mod routes;
mod same_work;
mod telling_accounts_apart;
mod threat_kit;
