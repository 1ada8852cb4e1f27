"""The monitoring app's metric names and window averages, as the alert rules use them.

The collector and its samples belong to the `monitoring` app; alerts only read
`monitoring.queries` (names, window averages) and listen to its sweep signal.
"""


def _queries():
    try:
        from monitoring import queries
    except ImportError:  # the metrics app is not installed: event rules only
        return None
    return queries


def names():
    """Metric names a rule may use, in the monitoring app's order."""
    queries = _queries()
    return list(queries.METRICS) if queries else []


def choices():
    queries = _queries()
    if not queries:
        return []
    metrics = queries.METRICS
    if isinstance(metrics, dict):
        return [(name, _label(name, info)) for name, info in metrics.items()]
    return [(name, name) for name in metrics]


def _label(name, info):
    if isinstance(info, str):
        return f"{name} ({info})"
    label = getattr(info, "label", None) or (info.get("label") if isinstance(info, dict) else None)
    return f"{name} ({label})" if label else name


def window_average(container_ids, metric, seconds):
    """{container pk: average over the last `seconds`} (None or absent: no sample)."""
    queries = _queries()
    if not queries or not container_ids:
        return {}
    return dict(queries.window_average(list(container_ids), metric, seconds))
