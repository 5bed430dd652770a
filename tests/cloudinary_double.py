"""A local HTTP double of Cloudinary's Upload API (upload, destroy) for the real SDK.

It checks each request the way Cloudinary does: the api_key is the account's and the signature is the
SHA-256 (or SHA-1, by length) of the sorted ``key=value`` parameters joined by ``&`` plus the API secret.
Multipart bodies are split as bytes; the file part is never decoded as text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UNSIGNED = {"file", "api_key", "signature", "resource_type", "cloud_name"}


def parse_multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
    fields: dict[str, bytes] = {}
    for part in body.split(b"--" + boundary)[1:-1]:  # preamble before the first, "--\r\n" after the last
        head, _, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head).group(1).decode()
        fields[name] = data.removesuffix(b"\r\n")
    return fields


def expected_signature(params: dict[str, str], secret: str, algorithm: str) -> str:
    to_sign = "&".join(sorted(f"{k}={v}".replace("&", "%26") for k, v in params.items() if k not in UNSIGNED and v))
    return hashlib.new(algorithm, (to_sign + secret).encode()).hexdigest()


@dataclass
class Call:
    action: str
    cloud: str
    params: dict[str, str]
    file: bytes | None
    signature_ok: bool


@dataclass
class CloudinaryDouble:
    api_key: str
    api_secret: str
    calls: list[Call] = field(default_factory=list)
    assets: dict[str, bytes] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> CloudinaryDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                m = re.fullmatch(r"/v1_1/([^/]+)/image/(upload|destroy)", self.path)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if m is None:
                    return self._reply(404, {"error": {"message": "unknown endpoint"}})
                raw = parse_multipart(body, self.headers["Content-Type"])
                file = raw.pop("file", None)
                params = {k: v.decode() for k, v in raw.items()}
                status, answer = double.handle(m.group(2), m.group(1), params, file)
                self._reply(status, answer)

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, action: str, cloud: str, params: dict[str, str], file: bytes | None) -> tuple[int, dict]:
        given = params.get("signature", "")
        algorithm = "sha256" if len(given) == 64 else "sha1"
        ok = (params.get("api_key") == self.api_key and bool(params.get("timestamp"))
              and hmac.compare_digest(given, expected_signature(params, self.api_secret, algorithm)))
        self.calls.append(Call(action, cloud, params, file, ok))
        if not ok:
            return 401, {"error": {"message": "Invalid Signature"}}
        public_id = params["public_id"]
        if action == "destroy":
            return 200, {"result": "ok" if self.assets.pop(public_id, None) is not None else "not found"}
        self.assets[public_id] = file or b""
        return 200, {"public_id": public_id, "version": 1764000000, "resource_type": "image", "bytes": len(file or b""),
                     "secure_url": f"https://res.cloudinary.com/{cloud}/image/upload/v1764000000/{public_id}"}
