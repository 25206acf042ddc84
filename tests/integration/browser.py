"""Open a local HTML file in headless Chromium (Debian's `chromium`) over the DevTools protocol.

`open_page(path, screenshot)` loads the page, takes a full-page screenshot and returns what a
reader would notice: console errors, uncaught exceptions, failed loads, and every image with
whether it decoded. The protocol client is aiohttp's websocket (already installed with faust).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", "--window-size=1280,900",
)  # fmt: skip
_IMAGES_JS = """[...document.images].map(i => ({
    figure: i.dataset.figure || '', alt: i.alt, decoded: i.complete && i.naturalWidth > 0,
    width: i.naturalWidth, height: i.naturalHeight}))"""


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or the page did not load."""


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""

    @property
    def broken_images(self) -> list[str]:
        return [image["figure"] or image["alt"] for image in self.images if not image["decoded"]]


def chromium_path() -> str:
    """The Chromium binary, or BrowserError naming how to install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise BrowserError("chromium not found: `make system-packages` (apt-get install -y chromium)")
    return found


def _devtools_port(profile: Path, process: subprocess.Popen, timeout_s: float) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with {process.returncode}: {process.stderr.read()[-2000:]}")
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        time.sleep(0.05)
    raise BrowserError(f"chromium opened no DevTools port within {timeout_s:.0f}s")


class _Session:
    """One page's DevTools websocket: commands by id, events collected as they arrive."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.ids, self.events = ws, itertools.count(1), []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self.ids)
        await self.ws.send_json({"id": command_id, "method": method, "params": params})
        async for message in self.ws:
            data = message.json()
            if data.get("id") == command_id:
                if "error" in data:
                    raise BrowserError(f"{method}: {data['error']}")
                return data.get("result", {})
            self.events.append(data)
        raise BrowserError(f"DevTools connection closed during {method}")

    async def wait_for(self, method: str, timeout_s: float) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        async with asyncio.timeout(timeout_s):
            async for message in self.ws:
                self.events.append(message.json())
                if self.events[-1].get("method") == method:
                    return


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append(
                "console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            out.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            out.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}".strip())
        elif method == "Network.loadingFailed":
            out.append(f"load failed: {params.get('errorText')}")
    return out


async def _inspect(port: int, url: str, screenshot: Path, timeout_s: float) -> PageReport:
    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as response:
            target = await response.json()
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = _Session(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                await page.call(f"{domain}.enable")
            await page.call("Page.navigate", url=url)
            await page.wait_for("Page.loadEventFired", timeout_s)
            result = await page.call("Runtime.evaluate", expression=_IMAGES_JS, returnByValue=True)
            title = await page.call("Runtime.evaluate", expression="document.title", returnByValue=True)
            size = (await page.call("Page.getLayoutMetrics"))["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = await page.call(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return PageReport(_errors(page.events), result["result"]["value"], title["result"]["value"])


def _stop(process: subprocess.Popen) -> None:
    """End Chromium and every helper it forked (renderer, crashpad), which share its session."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # helpers that outlived the browser
    process.wait()


def _remove_profile(profile: Path) -> None:
    # A helper killed a moment ago may still be flushing into the profile: retry briefly.
    for attempt in range(20):
        try:
            shutil.rmtree(profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt == 19:
                raise
            time.sleep(0.1)


def open_page(path: Path, screenshot: Path, timeout_s: float = 60.0) -> PageReport:
    """Load `path` in a fresh headless Chromium, write a full-page PNG to `screenshot`, report."""
    profile = Path(tempfile.mkdtemp(prefix="finpulse-chromium-"))
    try:
        process = subprocess.Popen(
            [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            port = _devtools_port(profile, process, timeout_s)
            return asyncio.run(_inspect(port, Path(path).resolve().as_uri(), screenshot, timeout_s))
        finally:
            _stop(process)
    finally:
        _remove_profile(profile)
