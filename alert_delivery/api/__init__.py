"""`alert-delivery serve`: alerts in over HTTP, durable on return.

Three dialects on one aiohttp application, all on the alerting core (``alert_delivery.alerting``):
Alertmanager's API v2 (what Prometheus, Grafana and amtool speak), PagerDuty's Events API v2
(``/v2/enqueue``) and a native API (``/api/v1``). A 2xx is answered only after the alert, its
routing and its queue rows are committed; a database that is down answers 503 with
``Retry-After``. Every route but the probes and ``/openapi.json`` needs a token
(``alert-delivery tokens add``).
"""

from alert_delivery.api.app import ServeOptions, build_app

__all__ = ["ServeOptions", "build_app"]
