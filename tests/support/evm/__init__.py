"""Hand-assembled EVM contracts and the transactions that exercise them on anvil (no solc)."""
