"""Development-only tooling: local Kafka-protocol broker and ClickHouse server launchers.

Used by the tests, `bench/` and the embedded demo; production images do not install it.
"""
