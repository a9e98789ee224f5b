"""Parity with Meta's reference implementation, run as an oracle in a subprocess."""
