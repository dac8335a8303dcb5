"""The prediction service: HTTP endpoints over the server role, and the client of the customer."""
