"""Reference device client and the terminal TV app."""
