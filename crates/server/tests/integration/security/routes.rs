//! Every route of the router, found rather than listed: the API's from its OpenAPI
//! document, the others from the `.route("...")` calls in the web crate's source.
