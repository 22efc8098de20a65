"""netready: metro-by-metro sub-1 ms computing-access compliance from latency telemetry."""

__version__ = "0.1.0"
