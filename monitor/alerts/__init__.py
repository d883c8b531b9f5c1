"""Alerts about new contradictions: rules (``rules``), delivery by email or signed webhook (``deliver``,
``email``, ``webhook``) and the daily digest (``digest``).

Scheduled jobs: ``monitor.alerts.deliver.deliver_alerts_job(runtime)`` (every minute) and
``monitor.alerts.digest.daily_digest_job(runtime)`` (daily at ``settings.digest_hour`` UTC).
"""
