"""Login with Amazon client: sans-I/O protocol plus a pooled async httpx client."""
