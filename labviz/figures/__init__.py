"""Figure layer: functions that take computed results and return ``plotly.graph_objects.Figure``.

Nothing here computes metrics, writes files or touches plotly's global settings.
"""
