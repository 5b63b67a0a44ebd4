"""The error page of `make run` (DEBUG on) lists settings, the environment, local variables and
the exception's text. Django hides values under names that look secret (KEY, TOKEN, PASS…) but
not passwords inside connection URLs: DATABASE_URL and REDIS_URL showed theirs. The filter hides
more names; the reporter then strips the password of every URL in the page, wherever it is."""

from __future__ import annotations

import re

from django.utils.safestring import SafeString
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

SUBSTITUTE = SafeExceptionReporterFilter.cleansed_substitute
# scheme://user:password@ (the user may be empty, as in redis://:password@host).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@'\"<>]*:)[^@\s/'\"<>]+@", re.I)


def redact_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(rf"\g<head>{SUBSTITUTE}@", text)


class SecretHidingFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|DSN|"
        "DATABASE_URL|REDIS_URL|BROKER_URL|RESULT_BACKEND",
        flags=re.I,
    )


class SecretHidingReporter(ExceptionReporter):
    # Still safe after the change: a password is replaced by asterisks, nothing else is touched.
    def get_traceback_html(self) -> SafeString:
        return SafeString(redact_url_passwords(super().get_traceback_html()))

    def get_traceback_text(self) -> SafeString:
        return SafeString(redact_url_passwords(super().get_traceback_text()))
