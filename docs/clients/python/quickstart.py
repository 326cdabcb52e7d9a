#!/usr/bin/env python3
"""A first mxgateway session from Python.

Opens a session, registers with MXAccess, adds and advises TIC101.SP,
streams the session's events in a background thread, writes a setpoint and
waits for its OnWriteComplete, reads two values with ReadBulk, decodes the
google.rpc.ErrorInfo of a gateway error, and closes the session. It exits
non-zero when anything is not as described.

Needs the stubs generated from the kit (docs/clients/python.md) on
PYTHONPATH. The gateway address comes from MXGATEWAY_ADDR (default
127.0.0.1:5000) and the API key from MXGATEWAY_API_KEY, else from the
gateway's first-run admin key in its data directory (MXGATEWAY_DATA_DIR,
default ~/.local/state/mxgateway).
"""

import os
import pathlib
import queue
import sys
import threading

import grpc
from google.rpc import error_details_pb2, status_pb2
from mxgateway.v1 import commands_pb2, events_pb2, gateway_pb2, gateway_pb2_grpc, values_pb2

WAIT = 30  # seconds to wait for any one event


def api_key():
    key = os.environ.get("MXGATEWAY_API_KEY")
    if key:
        return key
    data_dir = os.environ.get("MXGATEWAY_DATA_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "mxgateway")
    return pathlib.Path(data_dir, "admin.key").read_text().strip()


def error_info(err):
    """Returns the google.rpc.ErrorInfo the gateway put in a failed call, or None.

    The gateway sends a google.rpc.Status in the trailer
    grpc-status-details-bin; its details hold an ErrorInfo whose reason is
    stable (SESSION_NOT_FOUND, SESSION_FAULTED, INVALID_REQUEST, ...).
    """
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info
    return None


class Events:
    """Reads a session's events in a background thread, in sequence order."""

    def __init__(self, stub, session_id, metadata):
        self._q = queue.Queue()
        self._call = stub.StreamEvents(gateway_pb2.StreamEventsRequest(session_id=session_id), metadata=metadata)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for resp in self._call:
                self._q.put(resp.event)
            self._q.put(None)  # the stream ended: the session was closed
        except grpc.RpcError as err:
            self._q.put(err)

    def wait_for(self, what, match):
        """Returns the first event for which match(event) is true."""
        while True:
            try:
                ev = self._q.get(timeout=WAIT)
            except queue.Empty:
                sys.exit(f"quickstart: no {what} within {WAIT} s")
            if ev is None or isinstance(ev, grpc.RpcError):
                sys.exit(f"quickstart: the event stream ended before {what}: {ev}")
            if match(ev):
                return ev

    def wait_end(self):
        """Waits for the stream to end (after CloseSession)."""
        self._thread.join(WAIT)
        if self._thread.is_alive():
            sys.exit("quickstart: the event stream did not end after CloseSession")


def main():
    addr = os.environ.get("MXGATEWAY_ADDR", "127.0.0.1:5000")
    metadata = (("authorization", "Bearer " + api_key()),)
    with grpc.insecure_channel(addr) as channel:  # plaintext: loopback only
        stub = gateway_pb2_grpc.GatewayStub(channel)

        opened = stub.OpenSession(gateway_pb2.OpenSessionRequest(client_name="python-quickstart"), metadata=metadata)
        sid = opened.session_id
        print(f"session {sid}: worker pid {opened.worker_pid}, backend {opened.backend.description}")
        events = Events(stub, sid, metadata)

        def invoke(**command):
            reply = stub.Invoke(gateway_pb2.InvokeRequest(session_id=sid, command=commands_pb2.Command(**command)),
                                metadata=metadata).reply
            if reply.status not in (commands_pb2.GATEWAY_STATUS_CODE_OK, commands_pb2.GATEWAY_STATUS_CODE_BULK):
                # An MXAccess refusal is a normal reply: status, HRESULT, statuses.
                sys.exit(f"quickstart: {list(command)[0]} refused: "
                         f"{commands_pb2.GatewayStatusCode.Name(reply.status)} hresult {reply.hresult:#x} {reply.message}")
            return reply

        h = invoke(register=commands_pb2.RegisterCommand(client_name="python-quickstart")).register.server_handle
        item = invoke(add_item=commands_pb2.AddItemCommand(server_handle=h, item_definition="TIC101.SP")).item_handle.item_handle
        invoke(advise=commands_pb2.AdviseCommand(server_handle=h, item_handle=item))

        def data_change_of(ev):
            return ev.WhichOneof("body") == "data_change" and ev.data_change.item_handle == item

        first = events.wait_for("first value", data_change_of).data_change
        print(f"TIC101.SP = {first.value.double_value} "
              f"({values_pb2.QualityClass.Name(first.quality.quality_class)}, quality {first.quality.raw})")

        # A write is only accepted by the reply; its outcome is OnWriteComplete.
        invoke(write=commands_pb2.WriteCommand(server_handle=h, item_handle=item,
                                               value=values_pb2.MxValue(double_value=72.5)))
        done = events.wait_for("OnWriteComplete", lambda ev: ev.WhichOneof("body") == "write_complete"
                               and ev.write_complete.item_handle == item).write_complete
        if not all(s.success for s in done.statuses):
            sys.exit(f"quickstart: write refused: {done.statuses}")
        events.wait_for("72.5", lambda ev: data_change_of(ev) and ev.data_change.value.double_value == 72.5)
        print("wrote TIC101.SP = 72.5: write complete")

        # ReadBulk answers GATEWAY_STATUS_CODE_BULK: one entry per reference.
        reply = invoke(read_bulk=commands_pb2.ReadBulkCommand(server_handle=h, item_definitions=["TIC101.SP", "Tank1.Level"]))
        for e in reply.read_bulk.entries:
            print(f"read {e.item_definition} = {e.value.double_value} (cached: {e.was_cached})")
        if [e.was_cached for e in reply.read_bulk.entries] != [True, False]:
            sys.exit("quickstart: ReadBulk did not use the advised item's cached value")

        # A gateway failure is a gRPC error with a google.rpc.ErrorInfo.
        try:
            stub.Invoke(gateway_pb2.InvokeRequest(session_id="no-such-session",
                                                  command=commands_pb2.Command(register=commands_pb2.RegisterCommand())),
                        metadata=metadata)
            sys.exit("quickstart: an unknown session was accepted")
        except grpc.RpcError as err:
            info = error_info(err)
            print(f"unknown session: {err.code().name}, reason {info.reason if info else None}")
            if err.code() != grpc.StatusCode.NOT_FOUND or info is None or info.reason != "SESSION_NOT_FOUND":
                sys.exit("quickstart: expected NOT_FOUND with reason SESSION_NOT_FOUND")

        closed = stub.CloseSession(gateway_pb2.CloseSessionRequest(session_id=sid), metadata=metadata)
        events.wait_end()
        print(f"closed: {gateway_pb2.SessionState.Name(closed.state)}")
        if closed.state != gateway_pb2.SESSION_STATE_CLOSED:
            sys.exit("quickstart: the session did not close")
    print("quickstart: ok")


if __name__ == "__main__":
    main()
