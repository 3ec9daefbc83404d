"""A small Hugging Face Hub look-alike on 127.0.0.1 for tests.

It answers the requests the real ``huggingface_hub`` client makes, with the Hub's headers, so the
download and upload code paths under test are the library's own, not stand-ins:

* ``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: ``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``
  (sha256 of the content, like LFS files), ``Content-Length``/``X-Linked-Size``, ``Range`` resumes,
  and the Hub's error codes (``RepoNotFound`` 401, ``RevisionNotFound``/``EntryNotFound`` 404);
* the upload API used by ``HfApi.create_repo`` / ``create_commit`` over the LFS "basic" transfer:
  ``/api/repos/create``, ``/api/models/{repo}/preupload/{rev}``, ``/{repo}.git/info/lfs/objects/batch``,
  ``PUT /lfs-upload/{oid}``, ``/api/models/{repo}/commit/{rev}``;
* ``GET /static/{name}`` for release archives (GitHub release stand-in for ``fetch-upstream``);
* release URLs (:meth:`FakeHub.add_release`) answered like GitHub: a 302 to a CDN path that serves
  the archive with ``Range`` support (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``), or a CDN path
  that ignores ``Range`` (200, whole body); and a URL that redirects to itself (a loop).

Failures are injected per request (:meth:`FakeHub.fail`): HTTP 500, a reset connection, a body cut
short under a full ``Content-Length`` (truncated), a short body with a matching length, or flipped
bytes. Every request is logged in :attr:`FakeHub.requests` so tests can assert what was fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

FAILURE_KINDS = ("500", "reset", "truncate", "short", "corrupt", "stall")


@dataclass
class Failure:
    kind: str
    method: str | None
    match: str
    times: int
    skip: int = 0


@dataclass
class Repo:
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, str]] = field(default_factory=dict)
    """commit sha -> {path in repo: sha256 of the blob}"""
    token: str | None = None


class FakeHub:
    """Start with ``with FakeHub() as hub:``; ``hub.url`` is the endpoint for ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="fakehub-")
        self.blobs = Path(self._tmp.name)
        self.repos: dict[str, Repo] = {}
        self.static: dict[str, Path] = {}
        self.failures: list[Failure] = []
        self.requests: list[tuple[str, str]] = []
        self.served: list[tuple[str, int, int]] = []
        """(path, start, end exclusive) of every body sent, as sent (after injected failures)."""
        self.releases: dict[str, str] = {}
        self.cdn: dict[str, tuple[Path, bool]] = {}
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._counter = 0
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # -- lifecycle
    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self._tmp.cleanup()

    # -- content
    def put_blob(self, data: bytes | Path) -> str:
        """Store content by its sha256; a Path is linked, not copied (large checkpoints)."""
        if isinstance(data, Path):
            h = hashlib.sha256()
            with open(data, "rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
            oid = h.hexdigest()
            if not (self.blobs / oid).exists():
                (self.blobs / oid).symlink_to(Path(data).resolve())
            return oid
        oid = hashlib.sha256(data).hexdigest()
        (self.blobs / oid).write_bytes(data)
        return oid

    def create_repo(self, repo_id: str, *, token: str | None = None) -> Repo:
        with self._lock:
            repo = self.repos.setdefault(repo_id, Repo())
            repo.token = token
            return repo

    def add_commit(
        self,
        repo_id: str,
        files: dict[str, bytes | Path],
        *,
        commit: str | None = None,
        branch: str = "main",
        token: str | None = None,
    ) -> str:
        """Add a commit holding ``files`` on top of ``branch``; ``commit`` forces its id (pinned tests)."""
        repo = self.repos.get(repo_id) or self.create_repo(repo_id, token=token)
        oids = {path: self.put_blob(data) for path, data in files.items()}
        return self._commit(repo, repo_id, oids, commit=commit, branch=branch)

    def _commit(
        self,
        repo: Repo,
        repo_id: str,
        oids: dict[str, str],
        *,
        commit: str | None = None,
        branch: str = "main",
    ) -> str:
        with self._lock:
            parent = repo.commits.get(repo.refs.get(branch, ""), {})
            self._counter += 1
            sha = (
                commit
                or hashlib.sha1(f"{repo_id}|{self._counter}|{sorted(oids.items())}".encode()).hexdigest()
            )
            repo.commits[sha] = {**parent, **oids}
            repo.refs[branch] = sha
            return sha

    def add_static(self, name: str, path: Path) -> str:
        self.static[name] = Path(path)
        return f"{self.url}/static/{name}"

    def add_release(self, path: str, archive: Path, *, ranges: bool = True) -> str:
        """Serve ``archive`` at release URL ``path`` (e.g. ``/owner/repo/releases/download/v1/x.zip``)
        like GitHub: a 302 to a CDN path, which honours Range unless ``ranges`` is False."""
        cdn = f"/{'cdn' if ranges else 'cdn-norange'}/{hashlib.sha1(path.encode()).hexdigest()[:12]}/{Path(path).name}"
        self.releases[path] = cdn
        self.cdn[cdn] = (Path(archive), ranges)
        return f"{self.url}{path}"

    def cdn_path(self, archive: Path) -> str:
        return next(p for p, (a, _r) in self.cdn.items() if a == Path(archive))

    def add_redirect_loop(self, path: str) -> str:
        self.releases[path] = path
        return f"{self.url}{path}"

    def served_ranges(self, match: str) -> list[tuple[int, int]]:
        return [(a, b) for p, a, b in self.served if match in p]

    # -- failure injection
    def fail(self, kind: str, *, method: str | None = None, match: str = "", times: int = 1, skip: int = 0) -> None:
        """Make the next ``times`` requests whose path contains ``match`` fail with ``kind``, after
        letting ``skip`` such requests through (e.g. the archive's tail read, then fail the member)."""
        assert kind in FAILURE_KINDS, kind
        with self._lock:
            self.failures.append(Failure(kind, method, match, times, skip))

    def _take_failure(self, method: str, path: str) -> str | None:
        with self._lock:
            for f in self.failures:
                if f.times > 0 and (f.method is None or f.method == method) and f.match in path:
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    f.times -= 1
                    return f.kind
        return None

    def fetched(self, method: str = "GET") -> list[str]:
        """Paths requested with ``method`` (e.g. to assert what a mode downloaded)."""
        return [p for m, p in self.requests if m == method]


def _read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):  # a client that went away (a test's fault)
            self.close_connection = True

    # -- helpers
    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(
            status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})}
        )

    def _reset(self) -> None:
        """Abort the TCP connection (RST), like a dropped link."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self, repo: Repo) -> bool:
        return repo.token is None or self.headers.get("Authorization") == f"Bearer {repo.token}"

    # -- dispatch
    def do_HEAD(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: fine for a test server
            self.close_connection = True

    def _route(self) -> None:
        path = urlsplit(self.path).path
        self.hub.requests.append((self.command, unquote(path)))
        failure = self.hub._take_failure(self.command, unquote(path))
        if failure == "500":
            self._body()
            return self._error(500, "InternalError", "Internal Error (injected)")
        if failure == "reset":
            return self._reset()
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if self.command in ("HEAD", "GET") and len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), failure)
        if self.command in ("HEAD", "GET") and unquote(path) in self.hub.releases:
            self._body()
            return self._send(302, b"", {"Location": self.hub.releases[unquote(path)]}, "text/html")
        if self.command in ("HEAD", "GET") and unquote(path) in self.hub.cdn:
            archive, ranges = self.hub.cdn[unquote(path)]
            return self._serve_bytes(archive, {}, failure, ranges=ranges)
        if self.command == "GET" and len(parts) == 2 and parts[0] == "static":
            return self._static(parts[1], failure)
        if self.command == "POST" and parts[:3] == ["api", "repos", "create"]:
            return self._create_repo()
        if (
            self.command == "POST"
            and len(parts) == 6
            and parts[:2] == ["api", "models"]
            and parts[4] == "preupload"
        ):
            return self._preupload("/".join(parts[2:4]))
        if (
            self.command == "POST"
            and len(parts) == 6
            and parts[:2] == ["api", "models"]
            and parts[4] == "commit"
        ):
            return self._create_commit("/".join(parts[2:4]), parts[5])
        if self.command == "POST" and path.endswith(".git/info/lfs/objects/batch"):
            return self._lfs_batch()
        if self.command == "PUT" and len(parts) == 2 and parts[0] == "lfs-upload":
            return self._lfs_upload(parts[1])
        self._body()
        self._error(404, "NotFound", f"no route for {self.command} {path}")

    # -- downloads
    def _serve_bytes(
        self, data: bytes | Path, headers: dict[str, str], failure: str | None, *, ranges: bool = True
    ) -> None:
        """Send ``data`` (a file is streamed from disk, not read into memory), honouring ``Range``."""
        total = data.stat().st_size if isinstance(data, Path) else len(data)
        start, end = 0, total
        status = 200
        rng = self.headers.get("Range")
        if ranges and rng and rng.startswith("bytes=") and self.command == "GET":
            first, _, last = rng[len("bytes=") :].partition("-")
            if first:
                start, end = int(first), min(total, int(last) + 1 if last else total)
            else:  # suffix range: the last N bytes
                start = max(0, total - int(last))
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{total}"}
        body: bytes | None = None
        if isinstance(data, bytes) or failure in ("corrupt", "short", "truncate", "stall"):
            body = data[start:end] if isinstance(data, bytes) else _read_range(data, start, end)
            if failure == "corrupt":
                body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
            if failure == "short":
                body = body[: len(body) // 2]
        length = len(body) if body is not None else end - start
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        path = urlsplit(self.path).path
        if failure in ("truncate", "stall"):
            assert body is not None
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.hub.served.append((path, start, start + len(body) // 2))
            if failure == "stall":  # a link that hangs: the client is interrupted meanwhile
                self.hub.stop.wait(60)
            return self._reset()
        if body is not None:
            self.wfile.write(body)
        else:
            with open(data, "rb") as f:  # type: ignore[arg-type]
                f.seek(start)
                left = end - start
                while left > 0 and (block := f.read(min(left, 1 << 20))):
                    self.wfile.write(block)
                    left -= len(block)
        self.hub.served.append((path, start, start + length))

    def _resolve(self, repo_id: str, revision: str, filename: str, failure: str | None) -> None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or not self._authorized(repo):
            return self._error(401, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
        commit = repo.refs.get(revision, revision)
        files = repo.commits.get(commit)
        if files is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        oid = files.get(filename)
        if oid is None:
            return self._error(
                404, "EntryNotFound", f"{filename} does not exist on {revision}", {"X-Repo-Commit": commit}
            )
        data = self.hub.blobs / oid
        size = data.stat().st_size
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{oid}"',
            "X-Linked-Etag": f'"{oid}"',
            "X-Linked-Size": str(size),
        }
        self._serve_bytes(data, headers, failure if self.command == "GET" else None)

    def _static(self, name: str, failure: str | None) -> None:
        path = self.hub.static.get(name)
        if path is None:
            return self._error(404, "NotFound", f"{name} not found")
        self._serve_bytes(path, {}, failure)

    # -- uploads (HfApi, LFS basic transfer)
    def _create_repo(self) -> None:
        payload = json.loads(self._body() or b"{}")
        repo_id = (
            f"{payload.get('organization')}/{payload['name']}"
            if payload.get("organization")
            else payload["name"]
        )
        if repo_id in self.hub.repos:
            return self._error(
                409, "RepoExists", "You already created this model repo", {"X-Request-Id": "fake"}
            )
        self.hub.create_repo(repo_id)
        self._json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id})

    def _preupload(self, repo_id: str) -> None:
        payload = json.loads(self._body() or b"{}")
        if repo_id not in self.hub.repos:
            return self._error(404, "RepoNotFound", "Repository not found")
        files = [
            {"path": f["path"], "uploadMode": "lfs", "shouldIgnore": False, "oid": None}
            for f in payload.get("files", [])
        ]
        self._json(200, {"files": files, "commitOid": None})

    def _lfs_batch(self) -> None:
        payload = json.loads(self._body() or b"{}")
        objects = []
        for obj in payload.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if not (self.hub.blobs / obj["oid"]).exists():
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}", "header": {}}
                }
            objects.append(entry)
        self._json(
            200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"}
        )

    def _lfs_upload(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "BadOid", "content does not match oid")
        (self.hub.blobs / oid).write_bytes(data)
        self._send(200)

    def _create_commit(self, repo_id: str, revision: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        oids: dict[str, str] = {}
        for item in lines:
            if item["key"] == "lfsFile":
                value = item["value"]
                if not (self.hub.blobs / value["oid"]).exists():
                    return self._error(400, "MissingLfs", f"LFS object {value['oid']} was not uploaded")
                oids[value["path"]] = value["oid"]
            elif item["key"] == "file":
                value = item["value"]
                oids[value["path"]] = self.hub.put_blob(base64.b64decode(value["content"]))
        sha = self.hub._commit(repo, repo_id, oids, branch=unquote(revision))
        self._json(
            200,
            {
                "commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}",
                "commitOid": sha,
                "pullRequestUrl": None,
                "success": True,
            },
        )
