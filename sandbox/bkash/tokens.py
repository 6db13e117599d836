"""Grant/refresh tokens and the gateway's token check (reference §2.1, §2.2, §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .codes import BkashError, GatewayError
from .config import BkashSandboxConfig
from .formats import new_id_token, new_refresh_token

UNAUTHORIZED = "Unauthorized"
EXPIRED = "The incoming token has expired"
FORBIDDEN = "Forbidden"
# The response a blocked caller receives is unknown (§3.2: "The response a blocked caller receives
# is **unknown**"). HTTP 429 with a gateway-style body is this sandbox's guess.
BLOCKED = "Too many token requests: blocked for one hour"


@dataclass
class IdToken:
    value: str
    app_key: str
    username: str
    issued_at: float
    expires_at: float


@dataclass
class RefreshGrant:
    value: str
    app_key: str
    username: str
    auth_time: float
    expires_at: float


@dataclass
class _CredentialUse:
    recent_calls: list[float] = field(default_factory=list)
    blocked_until: float | None = None


class TokenAuthority:
    def __init__(self, config: BkashSandboxConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.id_tokens: dict[str, IdToken] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.uses: dict[tuple[str, str], _CredentialUse] = {}
        self.grant_calls = 0
        self.refresh_calls = 0
        self.counted_calls: list[float] = []

    # --- grant / refresh -------------------------------------------------------------------

    def grant(self, username: str | None, password: str | None, body: dict) -> dict:
        self.grant_calls += 1
        key = self._check_credentials(username, password, body)
        self._admit(key)
        now = self.clock()
        refresh = RefreshGrant(new_refresh_token(), key[1], key[0], now,
                               now + self.config.refresh_token_ttl_seconds)
        self.refresh_grants[refresh.value] = refresh
        return self._token_response(refresh)

    def refresh(self, username: str | None, password: str | None, body: dict) -> dict:
        self.refresh_calls += 1
        key = self._check_credentials(username, password, body)
        self._admit(key)
        token = body.get("refresh_token")
        # A list or an object would not even be a dict key; it is no refresh token either.
        grant = self.refresh_grants.get(token) if isinstance(token, str) else None
        if grant is None or (grant.username, grant.app_key) != key or self.clock() >= grant.expires_at:
            # No stored source shows what an unknown or expired refresh token gets (§3.2, §15.6);
            # 2079 "Invalid app Token" is the nearest listed code. A client should fall back to grant.
            raise BkashError("2079")
        return self._token_response(grant)

    def _check_credentials(self, username: str | None, password: str | None,
                           body: dict) -> tuple[str, str]:
        # username/password travel as headers and are checked by the gateway (§2.1, §2.2);
        # app_key/app_secret are in the body and checked by bKash, hence 2001 in a 200 (§11).
        if username != self.config.username or password != self.config.password:
            raise GatewayError(401, UNAUTHORIZED)
        if body.get("app_key") != self.config.app_key or body.get("app_secret") != self.config.app_secret:
            raise BkashError("2001")
        return (username, body["app_key"])

    def _admit(self, key: tuple[str, str]) -> None:
        """Count a grant/refresh against the rolling-hour limit of §3.2."""
        now = self.clock()
        use = self.uses.setdefault(key, _CredentialUse())
        if use.blocked_until is not None and now < use.blocked_until:
            raise GatewayError(429, BLOCKED)
        limit = self.config.token_calls_per_hour
        window = self.config.token_window_seconds  # bKash's rolling hour
        use.recent_calls = [t for t in use.recent_calls if t > now - window] + [now]
        self.counted_calls.append(now)
        if limit and len(use.recent_calls) > limit:
            use.blocked_until = now + self.config.lockout_seconds
            # The block is the punishment; once it lifts the caller starts a fresh hour, otherwise
            # a lockout shorter than an hour would re-trigger on the very next call.
            use.recent_calls = []
            raise GatewayError(429, BLOCKED)

    def _token_response(self, refresh: RefreshGrant) -> dict:
        now = self.clock()
        expires_at = now + self.config.token_ttl_seconds
        claims = {"sub": refresh.username, "aud": refresh.app_key, "token_use": "id",
                  "cognito:username": refresh.username, "auth_time": int(refresh.auth_time),
                  "iss": "https://cognito-idp.ap-southeast-1.amazonaws.com/ap-southeast-1_sandbox",
                  "iat": int(now), "exp": int(expires_at)}
        token = IdToken(new_id_token(claims), refresh.app_key, refresh.username, now, expires_at)
        self.id_tokens[token.value] = token
        # expires_in is a JSON number on the wire (§3.1); the refresh_token is returned unchanged
        # on every refresh (§3.2: byte-identical across 17 calls).
        return {"statusCode": "0000", "statusMessage": "Successful", "id_token": token.value,
                "token_type": "Bearer", "expires_in": int(self.config.token_ttl_seconds),
                "refresh_token": refresh.value}

    # --- the gateway's check on every other call -------------------------------------------

    def authenticate(self, authorization: str | None, app_key: str | None,
                     expire_now: Callable[[], bool]) -> IdToken:
        """The API Gateway's Cognito authorizer (§2.2). ``expire_now`` is asked only for a token
        that is otherwise valid, so an expire_token fault is not spent on a bad request."""
        # The raw id_token, no "Bearer " prefix, in every official sample (§2.1); whether the real
        # gateway accepts the prefix is unverified (§15.10), so it is refused here.
        token = self.id_tokens.get(authorization or "")
        if token is None:
            raise GatewayError(401, UNAUTHORIZED)
        if self.clock() >= token.expires_at or expire_now():
            raise GatewayError(401, EXPIRED)
        if app_key != token.app_key:
            raise GatewayError(403, FORBIDDEN)
        return token

    def stats(self) -> dict:
        now = self.clock()
        blocked = [u.blocked_until for u in self.uses.values()
                   if u.blocked_until is not None and u.blocked_until > now]
        return {"grant_calls": self.grant_calls, "refresh_calls": self.refresh_calls,
                "token_calls": list(self.counted_calls),
                "blocked_until": max(blocked) if blocked else None}
