"""The integration kit: Login with Amazon over a company's existing users table.

See docs/integration-kit.md. ``create_kit_app`` builds the service; the pieces
(``UsersTableMapping``, ``ForeignAccountStore``, ``LegacyAwareHasher``, ``KitDatabase``)
can be used on their own.
"""
