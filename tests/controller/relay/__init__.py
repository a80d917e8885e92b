"""Tests of the relay: PKI, registration, the gRPC service over real TLS, the agent side."""
