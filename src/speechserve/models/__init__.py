"""Model architectures: tensor in, tensor out. Nothing here knows about engines, servers or files."""
