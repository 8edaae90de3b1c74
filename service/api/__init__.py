"""HTTP layer: routers, dependencies, error handlers and ASGI middleware."""
