"""The delivery engine (no Dagster here): one engine, two drivers (Dagster runs and the worker).

Public entry points:

- ``registry.add_webhook(db_url, name=, kind=, url=, secret=, config=, ...)``: register a target
  (SSRF-checked, URL and secret encrypted with MultiFernet).
- ``engine.deliver_batch(db_url, limit=, worker_id=, run_id=)``: claim due queue rows and deliver
  them synchronously; returns a ``BatchResult``.
- ``worker.Worker`` / ``worker.run_worker``: the LISTEN/NOTIFY driver.
- ``dlq.list_dead`` / ``dlq.replay``: the dead-letter queue.
"""
