"""The relay (``stave relay``): a stateless gateway between apps and stave servers (seed 004)."""
