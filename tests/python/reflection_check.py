"""Lists a trainhub server's services through gRPC server reflection (v1alpha and v1) and checks
the standard health service, with the stock Python grpcio packages.

Usage: python3 reflection_check.py HOST:PORT
"""
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc

try:  # grpcio-reflection >= 1.63 ships the v1 protocol too
    from grpc_reflection.v1 import reflection_pb2 as v1_pb2
    from grpc_reflection.v1 import reflection_pb2_grpc as v1_grpc
except ImportError:  # pragma: no cover - older packages
    v1_pb2 = v1_grpc = None


def list_services(stub, pb2):
    responses = stub.ServerReflectionInfo(iter([pb2.ServerReflectionRequest(list_services="")]))
    return [s.name for r in responses for s in r.list_services_response.service]


def main(target):
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)
    services = list_services(v1alpha_grpc.ServerReflectionStub(channel), v1alpha_pb2)
    print("v1alpha: ok")
    if v1_grpc is not None:
        v1_services = list_services(v1_grpc.ServerReflectionStub(channel), v1_pb2)
        assert sorted(v1_services) == sorted(services), (v1_services, services)
        print("v1: ok")
    for name in sorted(services):
        print(name)
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(status.status))
    return 0 if status.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
