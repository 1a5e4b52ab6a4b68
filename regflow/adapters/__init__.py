"""Adapters fitting regflow's ports: stores (memory, peewee), mailers, password hashers."""
