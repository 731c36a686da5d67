"""A raw HTTP/1.1 server on loopback for the transport tests: reads each request head (and its
body) and sends exactly the bytes a test's ``respond`` gives, so framing and connection reuse
can be staged byte for byte."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable

#: (method, path, connection number) -> (the raw bytes to send, whether to close the connection
#: after).
Respond = Callable[[str, str, int], tuple[bytes, bool]]


def job(job_id: str, status: str = "Running") -> bytes:
    done = status != "Running"
    return json.dumps({
        "id": job_id, "projectId": "p1", "title": "t", "number": 1,
        "statuses": {"isCompleted": done, "executionStatus": status},
        "stageTime": {"submissionTime": 1700000000000, "runStartTime": None,
                      "completedTime": 1700000001000 if done else None}}).encode()


def answer(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(
        line + b"\r\n" for line in extra)
    if not any(line.lower().startswith(b"connection: close") for line in extra):
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


class RawServer:
    """Reads each request head and answers with ``respond(path, connection number)``."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.requests: list[tuple[int, str, str]] = []  # (connection number, method, path)
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                with self._lock:
                    self.requests.append((number, method, path))
                raw, close = self.respond(method, path, number)
                conn.sendall(raw)
                if close:
                    conn.shutdown(socket.SHUT_WR)
                    return


    def close(self) -> None:
        self.sock.close()
