"""Settings of an engine, read from the environment (``RADAR_…``) or given explicitly.

| setting      | environment        | default                                              |
|--------------|--------------------|------------------------------------------------------|
| data_dir     | RADAR_DATA         | ./radar-data                                         |
| event_store  | RADAR_EVENT_STORE  | ``sqlite:///<data>/events.sqlite`` or postgresql://… |
| rules_dir    | RADAR_RULES        | ./rules                                              |
| batch_size   | RADAR_BATCH_SIZE   | 100000 events per ingest batch                       |
| memory_limit | RADAR_MEMORY_LIMIT | 1GB for DuckDB                                       |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RADAR_", extra="ignore")

    data_dir: Path = Field(default=Path("radar-data"), validation_alias="RADAR_DATA")
    event_store: str | None = Field(default=None, validation_alias="RADAR_EVENT_STORE")
    rules_dir: Path = Field(default=Path("rules"), validation_alias="RADAR_RULES")
    batch_size: int = Field(default=100_000, ge=1, validation_alias="RADAR_BATCH_SIZE")
    memory_limit: str = Field(default="1GB", validation_alias="RADAR_MEMORY_LIMIT")

    @property
    def store_url(self) -> str:
        return self.event_store or f"sqlite:///{self.data_dir / 'events.sqlite'}"

    @property
    def view_path(self) -> Path:
        return self.data_dir / "view.duckdb"

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys.sqlite"
