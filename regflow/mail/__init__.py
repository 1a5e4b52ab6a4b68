"""Mail: the composer (templates to messages) and the relay (outbox to mailer)."""
