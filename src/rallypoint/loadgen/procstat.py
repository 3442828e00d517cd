"""Sampling a server process's CPU and memory with psutil while load runs."""

from __future__ import annotations

import logging

import psutil

from .report import ServerStats

logger = logging.getLogger(__name__)

_MB = 1024 * 1024


class ProcessSampler:
    """Collects CPU % (of one core; may exceed 100 for multi-threaded servers) and RSS.

    ``start()`` primes psutil's CPU counter; each ``sample()`` then reports usage since the
    previous call, so samples should be taken at a steady interval.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._proc = psutil.Process(pid)
        self._cpu: list[float] = []
        self._rss: list[float] = []
        self._alive = True

    def start(self) -> None:
        """Prime the CPU counter and forget earlier samples."""
        self._cpu.clear()
        self._rss.clear()
        try:
            self._proc.cpu_percent(None)
        except psutil.Error:
            self._alive = False

    def sample(self) -> None:
        """Take one sample; a vanished process stops sampling quietly (logged once)."""
        if not self._alive:
            return
        try:
            with self._proc.oneshot():
                cpu = self._proc.cpu_percent(None)
                rss = self._proc.memory_info().rss
        except psutil.Error as exc:
            logger.warning("server process %d cannot be sampled: %s", self.pid, exc)
            self._alive = False
            return
        self._cpu.append(cpu)
        self._rss.append(rss / _MB)

    def rss_mb(self) -> float | None:
        """Current RSS in MB, or None if the process is gone."""
        try:
            return float(self._proc.memory_info().rss) / _MB
        except psutil.Error:
            return None

    def stats(self) -> ServerStats:
        """Summary of the samples taken since ``start()``."""
        cpu, rss = self._cpu, self._rss
        return ServerStats(
            pid=self.pid,
            samples=len(cpu),
            cpu_percent_avg=round(sum(cpu) / len(cpu), 1) if cpu else None,
            cpu_percent_max=round(max(cpu), 1) if cpu else None,
            rss_mb_avg=round(sum(rss) / len(rss), 1) if rss else None,
            rss_mb_max=round(max(rss), 1) if rss else None,
        )
