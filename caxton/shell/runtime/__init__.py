"""The runtime: the node's batch loop, agent instances, and client sends."""
