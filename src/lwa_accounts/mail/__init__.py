"""Outgoing e-mail: rendering (``render``), and delivery of the outbox."""
