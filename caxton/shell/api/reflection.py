"""gRPC server reflection (grpc.reflection.v1 and v1alpha), so `grpcurl list` sees the API.

grpclib's reflection service answers from a protobuf descriptor pool. betterproto2's code
registers no descriptors, so the pool is built from the FileDescriptorSet that codegen
writes beside the generated code (`caxton.protoset`), plus the files of the health and
reflection services themselves. A pool of its own: the process-wide default is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from google.protobuf.descriptor_pb2 import FileDescriptorSet
from google.protobuf.descriptor_pool import DescriptorPool
from grpclib.health.v1 import health_pb2
from grpclib.reflection.service import ServerReflection
from grpclib.reflection.v1 import reflection_pb2
from grpclib.reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2

from caxton.shell.api.codegen import DESCRIPTORS


def with_reflection(services: Sequence[Any]) -> list[Any]:
    """`services` and the reflection services that describe them."""
    return list(ServerReflection.extend(services, pool=descriptor_pool()))


def descriptor_pool() -> DescriptorPool:
    """The descriptors of Caxton's .proto files and of the health and reflection services."""
    pool = DescriptorPool()
    protoset = files("caxton.shell.api.generated").joinpath(DESCRIPTORS).read_bytes()
    for file in FileDescriptorSet.FromString(protoset).file:  # dependencies come first
        pool.AddSerializedFile(file.SerializeToString())
    for module in (health_pb2, reflection_pb2, reflection_v1alpha_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    return pool
