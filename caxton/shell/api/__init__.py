"""The gRPC API: the contract in proto/caxton/v1 and the code generated from it."""
