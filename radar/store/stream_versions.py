"""A writer's memory of where its streams stand, so a bulk append need not look each one up.

Numbering a batch needs the current version of every stream in it. Looking them up costs one
index seek per stream per batch; a long import touches the same customers batch after batch. The
cache remembers the last version of every stream this writer appended to or looked up, and is
trusted only while the log's head is exactly where this writer left it: any append by someone else
moves the head, and the whole cache is dropped. Checked under the write lock, so it is never stale.
"""

from __future__ import annotations

import polars as pl

_SCHEMA = {"stream": pl.String, "version": pl.Int64}


class StreamVersions:
    """Last versions of streams, valid for one head position of the log."""

    def __init__(self, max_streams: int = 2_000_000) -> None:
        self.max_streams = max_streams
        self._head: int | None = None
        self._known = pl.DataFrame(schema=_SCHEMA)

    def lookup(self, streams: pl.Series, head: int) -> tuple[pl.DataFrame, pl.Series]:
        """``(known, missing)`` for the distinct ``streams`` when the log's head is ``head``:
        ``known`` has (stream, version) of the remembered ones, ``missing`` the others."""
        if head != self._head:
            self._known = pl.DataFrame(schema=_SCHEMA)
        wanted = pl.DataFrame({"stream": streams.cast(pl.String)}).unique()
        known = wanted.join(self._known, on="stream", how="inner")
        missing = wanted.join(self._known, on="stream", how="anti")["stream"]
        return known, missing

    def remember(self, versions: pl.DataFrame, head: int) -> None:
        """After a committed append: ``versions`` (stream, version) are the streams' versions now
        (null version: the stream has no events) and ``head`` is the log's head."""
        fresh = versions.select(
            pl.col("stream").cast(pl.String), pl.col("version").cast(pl.Int64).fill_null(0)
        )
        merged = pl.concat([self._known.join(fresh, on="stream", how="anti"), fresh])
        if merged.height > self.max_streams:
            merged = fresh
        self._known = merged
        self._head = head

    def forget(self) -> None:
        """Drop everything (e.g. after a failed append)."""
        self._head = None
        self._known = pl.DataFrame(schema=_SCHEMA)
