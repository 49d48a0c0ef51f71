"""Checkpoint resolution, layout detection, config parsing and verified streaming weight loading."""
