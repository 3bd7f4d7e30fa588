"""An offline Login with Amazon. Imports nothing from lwa/ or core/: an independent oracle."""
