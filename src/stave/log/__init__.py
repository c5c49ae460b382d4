"""The verifiable log: an RFC 9162 Merkle tree of event ids, C2SP signed checkpoints, proofs and tiles."""
