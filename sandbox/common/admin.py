"""Client for the admin calls both sandboxes answer alike (faults, stats, reset), for tests and the
demo. Each sandbox's client adds its own views and names its error."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx


class SandboxAdminError(RuntimeError):
    pass


class SandboxAdmin:
    # For the error: "bKash sandbox admin GET /admin/faults answered HTTP 404: ...".
    provider: ClassVar[str]
    error: ClassVar[type[SandboxAdminError]] = SandboxAdminError

    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http

    async def add_fault(self, operation: str, kind: str, **kw: Any) -> dict:
        """See the sandbox's faults.FaultSpec for every field, and its client's docstring for examples."""
        return await self._call("POST", "/admin/faults", json={"operation": operation, "kind": kind, **kw})

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/admin/faults")

    async def faults(self) -> list[dict]:
        return await self._call("GET", "/admin/faults")

    async def stats(self) -> dict:
        return await self._call("GET", "/admin/stats")

    async def reset(self) -> None:
        await self._call("POST", "/admin/reset")

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = await self.http.request(method, self.base_url + path, **kw)
        if response.is_error:
            raise self.error(
                f"{self.provider} sandbox admin {method} {path} answered HTTP {response.status_code}: {response.text}")
        return response.json()
