"""The ground: shapes and contracts every wing shares (records, ports, clock, exceptions, screens,
the message catalog). No behaviour; imports nothing of regflow."""
