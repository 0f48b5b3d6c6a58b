"""A Slack-compatible Web API server on 127.0.0.1 for tests: the real slack-sdk client talks
to it through `base_url`. It serves chat.postMessage (with message metadata), chat.update,
conversations.history, conversations.replies, conversations.list, reactions.get and the
external file upload; it records messages, edits, thread replies and reactions.

Faults, as Slack and networks give them: a rate limit (429 + Retry-After) or a server error
(`fail_next`), a response lost after the call took effect or a connection reset before it
did (`drop_next`), permanent errors (a token it does not accept, missing channels), or the
whole server stopped."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

# The channels the workspace has from the start (what conversations.list lists).
WORKSPACE_CHANNELS = (
    "segment-health",
    "segment-oncall",
    "segmentation-review",
    "clienteling",
    "crm-ops",
)


class SlackServer:
    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[tuple[int, dict[str, str]]] = []
        # Permanent errors as Slack gives them: a token the workspace does not accept (when
        # `token` is set, any other is invalid_auth), and channels that do not exist.
        self.token: str | None = None
        self.missing_channels: set[str] = set()
        self.reactions: dict[str, list[dict[str, Any]]] = {}
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.uploads: dict[str, bytes] = {}  # file id -> bytes received at the upload URL
        self.shared_files: list[dict[str, Any]] = []  # completed uploads with their message
        # Lost responses and resets: (method or None for any, "after" or "before" the call).
        self.drops: list[tuple[str | None, str]] = []
        # Channels by name (without '#') and ID; any name posted to is created, like a
        # workspace where the bot was invited everywhere it is asked to post.
        self.channels: dict[str, str] = {}
        self._ts = itertools.count(1)
        for name in WORKSPACE_CHANNELS:
            self.channel_id(name)
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def fail_next(self, status: int, retry_after: int | None = None, times: int = 1) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.failures.extend([(status, headers)] * times)

    def drop_next(self, method: str | None = None, when: str = "after", times: int = 1) -> None:
        """Close the connection without an answer: `after` the call took effect (the response
        is lost) or `before` (a reset)."""
        self.drops.extend([(method, when)] * times)

    def channel_id(self, name_or_id: str) -> str:
        if name_or_id in self.channels.values():
            return name_or_id
        name = name_or_id.lstrip("#")
        if name not in self.channels:
            self.channels[name] = f"C{len(self.channels) + 1:08d}"
        return self.channels[name]

    def channel_name(self, channel_id: str) -> str:
        """'#name' of a channel ID (what a test compares with its configured channel)."""
        return next(f"#{n}" for n, i in self.channels.items() if i == channel_id)

    def history(self, channel: str) -> list[dict[str, Any]]:
        channel_id = self.channel_id(channel)
        return [
            m
            for m in self.messages.values()
            if m["channel"] == channel_id and not m.get("thread_ts")
        ]

    def posts(self, thread: bool | None = None) -> list[dict[str, Any]]:
        found = [args for method, args in self.calls if method == "chat.postMessage"]
        if thread is None:
            return found
        return [a for a in found if bool(a.get("thread_ts")) == thread]

    def updates(self) -> list[dict[str, Any]]:
        return [args for method, args in self.calls if method == "chat.update"]

    def start(self) -> SlackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _args(self) -> dict[str, Any]:
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                if body:
                    if "json" in (self.headers.get("Content-Type") or ""):
                        query.update(json.loads(body))
                    else:
                        query.update({k: v[0] for k, v in parse_qs(body).items()})
                for key in ("blocks", "metadata"):
                    if isinstance(query.get(key), str):
                        query[key] = json.loads(query[key])
                return query

            def _reply(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                if self.path.startswith(
                    "/upload/"
                ):  # the upload URL files.getUploadURLExternal gave
                    length = int(self.headers.get("Content-Length") or 0)
                    server.uploads[self.path.rsplit("/", 1)[-1]] = self.rfile.read(length)
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                method = urlparse(self.path).path.rsplit("/", 1)[-1]
                args = self._args()
                drop = next((d for d in server.drops if d[0] in (None, method)), None)
                if drop is not None:
                    server.drops.remove(drop)
                    if drop[1] == "before":
                        server.calls.append((f"reset:{method}", args))
                        self.close_connection = True
                        return
                if server.failures:
                    status, headers = server.failures.pop(0)
                    server.calls.append((f"failed:{method}", args))
                    self._reply(
                        status,
                        {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"},
                        headers,
                    )
                    return
                bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if server.token is not None and bearer != server.token:
                    server.calls.append((f"refused:{method}", args))
                    self._reply(200, {"ok": False, "error": "invalid_auth"})
                    return
                channel = args.get("channel") or args.get("channel_id")
                missing = {server.channels.get(c.lstrip("#"), c) for c in server.missing_channels}
                if channel and (channel in server.missing_channels or channel in missing):
                    server.calls.append((f"refused:{method}", args))
                    self._reply(200, {"ok": False, "error": "channel_not_found"})
                    return
                if channel and method != "conversations.list":
                    args["channel_name"] = server.channel_name(server.channel_id(channel))
                server.calls.append((method, args))
                if drop is not None:  # "after": the call takes effect, its answer is lost
                    self.close_connection = True
                    self._answer(method, args)
                    return
                self._reply(200, self._answer(method, args))

            def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
                """Do what the method does; its JSON answer."""
                if method == "chat.postMessage":
                    ts = f"1700000000.{next(server._ts):06d}"
                    channel_id = server.channel_id(args["channel"])
                    message = {
                        "ts": ts,
                        "channel": channel_id,
                        "text": args.get("text"),
                        "blocks": args.get("blocks"),
                        "thread_ts": args.get("thread_ts"),
                        "bot_id": "B0SEGMENT",
                        "metadata": args.get("metadata"),
                    }
                    server.messages[ts] = message
                    if args.get("thread_ts"):
                        server.replies.setdefault(args["thread_ts"], []).append(message)
                    return {"ok": True, "channel": channel_id, "ts": ts, "message": message}
                elif method == "conversations.list":
                    gone = {c.lstrip("#") for c in server.missing_channels}
                    channels = [
                        {"id": i, "name": n} for n, i in server.channels.items() if n not in gone
                    ]
                    return {"ok": True, "channels": channels, "response_metadata": {}}
                elif method == "conversations.history":
                    found = sorted(
                        server.history(args["channel"]), key=lambda m: m["ts"], reverse=True
                    )
                    shown = [
                        m if args.get("include_all_metadata") else {**m, "metadata": None}
                        for m in found[: int(args.get("limit") or 100)]
                    ]
                    return {"ok": True, "messages": shown, "has_more": False}
                elif method == "chat.update":
                    message = server.messages.get(args.get("ts"))
                    if message is None:
                        return {"ok": False, "error": "message_not_found"}
                    message.update(text=args.get("text"), blocks=args.get("blocks"), edited=True)
                    return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
                elif method == "reactions.get":
                    ts = args.get("timestamp")
                    return {
                        "ok": True,
                        "type": "message",
                        "message": {"ts": ts, "reactions": server.reactions.get(ts, [])},
                    }
                elif method == "conversations.replies":
                    ts = args.get("ts")
                    parent = server.messages.get(ts, {"ts": ts})
                    if not args.get("include_all_metadata"):
                        parent = {**parent, "metadata": None}
                    return {"ok": True, "messages": [parent, *server.replies.get(ts, [])]}
                elif method == "files.getUploadURLExternal":
                    file_id = f"F{next(server._ts):08d}"
                    upload_url = f"http://127.0.0.1:{server.port}/upload/{file_id}"
                    return {"ok": True, "upload_url": upload_url, "file_id": file_id}
                elif method == "files.completeUploadExternal":
                    files = args.get("files")
                    files = json.loads(files) if isinstance(files, str) else files
                    for f in files:
                        server.shared_files.append(
                            {
                                **f,
                                "channel_id": args.get("channel_id"),
                                "initial_comment": args.get("initial_comment"),
                                "bytes": server.uploads.get(f["id"], b""),
                            }
                        )
                    return {"ok": True, "files": [{"id": f["id"]} for f in files]}
                else:
                    return {"ok": False, "error": "unknown_method"}

            do_GET = _handle
            do_POST = _handle

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
