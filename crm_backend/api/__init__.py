"""The CRM's REST API (aiohttp): generic collection routes generated from the resource registry,
the seeds' action endpoints, and the OpenAPI document. Mounted by the gateway under /api/v1."""
