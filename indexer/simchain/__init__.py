"""The simulated chain: a deterministic JSON-RPC server for tests, demos and benchmarks."""
