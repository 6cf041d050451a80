"""The local stack for dev and tests: not deployed, never imported by services."""
