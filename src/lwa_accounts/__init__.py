"""lwa-accounts: Login with Amazon joined safely to an existing account system."""

__version__ = "0.1.0"
