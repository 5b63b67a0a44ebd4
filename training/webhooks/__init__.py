"""Signed webhooks for API clients (issue #19.2-#19.5), on the Replicate model: a run created with
`webhook` gets `start`, `output` and `completed` deliveries of its JSON, signed per Standard
Webhooks, sent by Celery in order per run and retried for up to a day. Part of the runs layer:
it stores, signs and sends the body it is handed and never imports a surface. The API renders
the body (a run as GET /api/v1/training-runs/{id}/ shows it) in its `run_changed` receiver,
training/api/receivers.py, and calls `run_webhook_announce` with it."""
