"""Fault injection: rules that make the next matching API requests fail, stall or drop."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
RANDOM_KINDS = ("500", "429", "timeout", "reset")


@dataclass
class Fault:
    """What to do to one request.

    ``kind`` is ``"fail"`` (answer ``status``/``body``), ``"delay"`` (sleep ``seconds``) or
    ``"drop"`` (close the socket with a reset). With ``after_effect`` the request is performed
    first: the platform stored the change, the client only sees the fault ("unknown outcome").
    """

    kind: str
    status: int = 500
    body: Any = None
    seconds: float = 0.0
    after_effect: bool = False

    @property
    def label(self) -> str:
        """How the request log names the fault: the status, ``"timeout"`` or ``"reset"``."""
        if self.kind == "fail":
            return str(self.status)
        return "timeout" if self.kind == "delay" else "reset"


@dataclass
class _Rule:
    fault: Fault
    remaining: int
    method: str | None
    path: str | None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or self.path in path


class FaultPlan:
    """The pending fault rules (first added, first used) and the optional random faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._rate = 0.0
        self._rng = random.Random()
        self._kinds: tuple[str, ...] = RANDOM_KINDS
        self._timeout_seconds = 2.0
        self._after_effect_ratio = 0.5

    def add(self, fault: Fault, n: int, method: str | None, path: str | None) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        if fault.kind == "delay" and fault.seconds < 0:
            raise ValueError("seconds must not be negative")
        with self._lock:
            self._rules.append(_Rule(fault, n, method.upper() if method else None, path))

    def set_random(
        self, rate: float, seed: int | None, kinds: tuple[str, ...], timeout_seconds: float, after_effect_ratio: float
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        unknown = set(kinds) - set(RANDOM_KINDS)
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of {RANDOM_KINDS}, got {kinds!r}")
        with self._lock:
            self._rate = rate
            self._rng = random.Random(seed)
            self._kinds = tuple(kinds)
            self._timeout_seconds = timeout_seconds
            self._after_effect_ratio = after_effect_ratio

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._rate = 0.0

    @property
    def pending(self) -> int:
        """How many explicitly queued faults are left."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any (explicit rules first, then the random draw)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule.fault
            if self._rate <= 0 or method not in MUTATING or self._rng.random() >= self._rate:
                return None
            kind = self._rng.choice(self._kinds)
            # 429 comes from Rack::Attack before the app runs, so it never has an effect.
            after = kind != "429" and self._rng.random() < self._after_effect_ratio
            if kind == "500":
                return Fault("fail", 500, after_effect=after)
            if kind == "429":
                return Fault("fail", 429)
            if kind == "timeout":
                return Fault("delay", seconds=self._timeout_seconds, after_effect=after)
            return Fault("drop", after_effect=after)
