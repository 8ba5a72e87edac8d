"""The cluster's shell: who is out there (gossip) and what this node holds (leases)."""

from caxton.shell.cluster.gossip import Gossip, GossipConfig, GossipError, Peer

__all__ = ["Gossip", "GossipConfig", "GossipError", "Peer"]
