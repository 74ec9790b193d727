"""A Modal control-plane stand-in: a grpclib server implementing, from the `modal_proto`
service definition shipped with the `modal` client, the five RPCs the modal provider uses
(ClientHello, FunctionGet, FunctionGetSchedulingParams, FunctionUpdateSchedulingParams,
FunctionGetCurrentStats). Every other RPC answers UNIMPLEMENTED, so an unexpected call fails
loudly. Auth: the x-modal-token-id / x-modal-token-secret metadata must match.
"""
from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from grpclib import GRPCError, Status
from grpclib.server import Server
from modal_proto import api_pb2
from modal_proto.api_grpc import ModalClientBase

from fake_http import Warmup

TOKEN_ID = "ak-fake-id"
TOKEN_SECRET = "as-fake-s3cr3t"
FIELDS = ("min_containers", "max_containers", "buffer_containers", "scaledown_window")


def _unimplemented(name: str):
    async def handler(self, stream) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, f"{name} is not implemented by the fake")
    return handler


class _Servicer(ModalClientBase):
    def __init__(self, fake: "ModalFake") -> None:
        self.fake = fake

    def _check(self, stream, name: str) -> None:
        md = dict(stream.metadata or {})
        if md.get("x-modal-token-id") != TOKEN_ID or md.get("x-modal-token-secret") != TOKEN_SECRET:
            raise GRPCError(Status.UNAUTHENTICATED, "Token missing or invalid")
        with self.fake.lock:
            self.fake.calls.append(name)
            fault = next((f for f in self.fake.faults if f[0] == name), None)
            if fault:
                self.fake.faults.remove(fault)
        if fault:
            raise GRPCError(fault[1], f"injected {fault[1].name}")

    async def ClientHello(self, stream) -> None:
        await stream.recv_message()
        self._check(stream, "ClientHello")
        await stream.send_message(api_pb2.ClientHelloResponse())

    async def FunctionGet(self, stream) -> None:
        req = await stream.recv_message()
        self._check(stream, "FunctionGet")
        if (req.app_name, req.object_tag) != (self.fake.app, self.fake.function):
            raise GRPCError(Status.NOT_FOUND, f"App '{req.app_name}' has no function '{req.object_tag}'")
        await stream.send_message(api_pb2.FunctionGetResponse(
            function_id=self.fake.function_id,
            handle_metadata=api_pb2.FunctionHandleMetadata(function_name=req.object_tag),
            function=api_pb2.FunctionData(function_name=req.object_tag, ranked_functions=[
                api_pb2.FunctionData.RankedFunction(function=api_pb2.Function(function_name=req.object_tag))])))

    def _settings(self) -> api_pb2.AutoscalerSettings:
        return api_pb2.AutoscalerSettings(**self.fake.settings)

    async def FunctionGetSchedulingParams(self, stream) -> None:
        req = await stream.recv_message()
        self._check(stream, "FunctionGetSchedulingParams")
        self._known(req.function_id)
        await stream.send_message(api_pb2.FunctionGetSchedulingParamsResponse(
            autoscaler_configuration=api_pb2.AutoscalerConfiguration(settings=self._settings())))

    async def FunctionUpdateSchedulingParams(self, stream) -> None:
        req = await stream.recv_message()
        self._check(stream, "FunctionUpdateSchedulingParams")
        self._known(req.function_id)
        with self.fake.lock:
            for name in FIELDS:
                if req.settings.HasField(name):
                    self.fake.settings[name] = getattr(req.settings, name)
            self.fake.updates.append({n: getattr(req.settings, n) for n in FIELDS if req.settings.HasField(n)})
            self.fake.warm.set(self.fake.settings["min_containers"])
        await stream.send_message(api_pb2.FunctionUpdateSchedulingParamsResponse(current_settings=self._settings()))

    async def FunctionGetCurrentStats(self, stream) -> None:
        req = await stream.recv_message()
        self._check(stream, "FunctionGetCurrentStats")
        self._known(req.function_id)
        await stream.send_message(api_pb2.FunctionStats(num_total_tasks=self.fake.warm.ready()))

    def _known(self, function_id: str) -> None:
        if function_id != self.fake.function_id:
            raise GRPCError(Status.NOT_FOUND, f"Function {function_id} not found")


# Everything the fake does not implement answers UNIMPLEMENTED instead of being abstract.
for _name in list(_Servicer.__abstractmethods__):
    setattr(_Servicer, _name, _unimplemented(_name))
_Servicer.__abstractmethods__ = frozenset()


class ModalFake:
    def __init__(self, app: str = "llm", function: str = "generate", min_containers: int = 0,
                 max_containers: int = 6, scaledown_window: int = 60) -> None:
        self.app, self.function, self.function_id = app, function, "fu-fake0001"
        self.settings: dict[str, Any] = {"min_containers": min_containers, "max_containers": max_containers,
                                         "buffer_containers": 0, "scaledown_window": scaledown_window}
        self.updates: list[dict] = []
        self.calls: list[str] = []
        self.faults: list[tuple[str, Status]] = []  # (rpc name, status), answered once each
        self.warm = Warmup(min_containers)
        self.lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ModalFake":
        ready = threading.Event()

        async def serve() -> None:
            self._server = Server([_Servicer(self)])
            await self._server.start("127.0.0.1", self.port)
            ready.set()
            await self._server.wait_closed()

        threading.Thread(target=self._loop.run_until_complete, args=(serve(),), daemon=True).start()
        assert ready.wait(5), "fake Modal server did not start"
        return self

    def stop(self) -> None:
        if self._server:
            self._loop.call_soon_threadsafe(self._server.close)
