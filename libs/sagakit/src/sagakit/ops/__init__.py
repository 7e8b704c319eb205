"""Operations: health and readiness probes, Prometheus metrics, logging."""
