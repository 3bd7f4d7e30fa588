"""FastAPI application: pages, JSON API, error mapping, CSRF, cookies, rate limits."""
