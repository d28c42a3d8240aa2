"""Open pages in Debian's headless Chromium and see what a reader would: console errors and rendered images.

Talks the Chrome DevTools Protocol over a websocket (websocket-client): the console messages, failed loads
(CSP violations, missing files) and each image's decoded size come from the browser itself. `make chromium`
installs the browser.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import websocket

STARTUP_SECONDS = 20

# every <img>: decoded in the browser (decode() rejects a broken image), with its natural size
IMAGES_JS = """Promise.all([...document.images].map(img => img.decode().then(() => '', e => String(e)).then(error => ({
    alt: img.alt, width: img.naturalWidth, height: img.naturalHeight, error}))))"""


@dataclass
class Page:
    errors: list[str]  # console errors, uncaught exceptions, failed loads, policy violations
    warnings: list[str]
    images: list[dict]  # alt, width, height (natural, in pixels), error ('' when it decoded)
    title: str
    text: str  # document.body.innerText


class Chromium:
    """One headless browser for a test module; `open(path)` loads a local file and reports on it."""

    def __init__(self):
        binary = shutil.which("chromium")
        assert binary, "chromium is not installed: run `make chromium` (Debian package chromium)"
        self._profile = tempfile.TemporaryDirectory()
        self._process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port = self._port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=STARTUP_SECONDS) as reply:
            target = next(t for t in json.load(reply) if t["type"] == "page")
        self._ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=STARTUP_SECONDS, suppress_origin=True)
        self._next_id = 0
        self._events: list[dict] = []
        for domain in ("Runtime", "Log", "Page"):
            self._call(f"{domain}.enable")

    def open(self, path: Path) -> Page:
        self._events.clear()
        self._call("Page.navigate", url=Path(path).resolve().as_uri())
        self._wait_for("Page.loadEventFired")
        images = self._evaluate(IMAGES_JS)
        title, text = self._evaluate("[document.title, document.body.innerText]")
        errors, warnings = [], []
        for event in self._events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                line = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                (errors if params["type"] in ("error", "assert") else warnings if params["type"] == "warning" else []).append(line)
            elif method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif method == "Log.entryAdded":
                entry = params["entry"]
                (errors if entry["level"] == "error" else warnings if entry["level"] == "warning" else []).append(
                    f"{entry['text']} ({entry.get('url', '')})")
        return Page(errors, warnings, images, title, text)

    def close(self) -> None:
        try:
            self._ws.close()
        finally:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._profile.cleanup()

    def _port(self) -> int:
        active = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self._process.returncode} at startup")
            lines = active.read_text().splitlines() if active.is_file() else []
            if len(lines) >= 2:
                return int(lines[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def _evaluate(self, expression: str):
        reply = self._call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"]["value"]

    def _call(self, method: str, **params) -> dict:
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._next_id:
                assert "error" not in message, message["error"]
                return message["result"]
            if "method" in message:
                self._events.append(message)

    def _wait_for(self, method: str) -> None:
        while not any(e["method"] == method for e in self._events):
            message = json.loads(self._ws.recv())
            if "method" in message:
                self._events.append(message)
