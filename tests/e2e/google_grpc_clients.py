"""Google's own health and reflection clients, run as a child process by the e2e tests.

    python -m tests.e2e.google_grpc_clients check ADDRESS SERVICE
    python -m tests.e2e.google_grpc_clients watch ADDRESS SERVICE
    python -m tests.e2e.google_grpc_clients list ADDRESS
    python -m tests.e2e.google_grpc_clients describe ADDRESS SERVICE

grpcio-health-checking's and grpcio-reflection's generated modules register the same
protobuf symbols as grpclib's health and reflection modules, so they cannot be imported in
a process that imports Caxton's server. Each answer is printed on a line of its own.
"""

from __future__ import annotations

import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT_S = 30


def main(command: str, address: str, *args: str) -> None:
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        if command == "check":
            reply = health.Check(health_pb2.HealthCheckRequest(service=args[0]), timeout=TIMEOUT_S)
            print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
        elif command == "watch":
            answers = health.Watch(health_pb2.HealthCheckRequest(service=args[0]))
            try:
                for reply in answers:
                    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
                    sys.stdout.flush()
                print("ended OK")
            except grpc.RpcError as exc:
                print(f"ended {exc.code().name}")
        elif command == "list":
            for service in ProtoReflectionDescriptorDatabase(channel).get_services():
                print(service)
        elif command == "describe":
            pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
            service = pool.FindServiceByName(args[0])
            for method in service.methods:
                print(
                    f"{method.name}({method.input_type.full_name}) {method.output_type.full_name}"
                )
        else:
            raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
