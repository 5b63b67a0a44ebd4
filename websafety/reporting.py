"""The error page of `make run` (DEBUG on) lists settings and the environment. Django hides
names that look secret (KEY, TOKEN, PASSWORD…) but not passwords inside connection URLs:
DATABASE_URL and REDIS_URL showed theirs. This filter hides those too, wherever they appear."""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

# user:password@ in any URL: the password is replaced, the rest stays readable.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)@", re.I)


def redact_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(r"\g<head>" + SafeExceptionReporterFilter.cleansed_substitute + "@", text)


class SecretHidingFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|DSN|"
        "DATABASE_URL|REDIS_URL|BROKER_URL|CELERY_RESULT_BACKEND",
        flags=re.I,
    )

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return redact_url_passwords(cleansed)
        return cleansed

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        return {
            key: redact_url_passwords(value) if isinstance(value, str) else value
            for key, value in super().get_safe_request_meta(request).items()
        }

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, redact_url_passwords(value) if isinstance(value, str) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
