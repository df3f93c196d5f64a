"""The HTTP side: the Falcon app and its route table, resources, middleware, error handlers,
the OpenAPI document. Imports only `functions/` (and Falcon): I/O arrives as ports."""
