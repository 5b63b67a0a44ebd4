"""Signed webhooks for API clients (issue #19.2-#19.5), on the Replicate model: a run created with
`webhook` gets `start`, `output` and `completed` deliveries of its JSON, signed per Standard
Webhooks, sent by Celery in order per run and retried for up to a day. A surface beside the API:
it renders runs with the API's serializer, and the run's life reaches it only through the
`training.signals.run_changed` signal."""
