from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_the_openapi_schema_builds_without_warnings_and_documents_every_error(
    tmp_path: object,
) -> None:
    out = f"{tmp_path}/schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", out)
    schema = yaml.safe_load(open(out))
    create = schema["paths"]["/api/v1/training-runs/"]["post"]
    assert {"201", "400", "401", "403", "409", "422", "429"} <= set(create["responses"])
    assert "/api/v1/features/" in schema["paths"]
    assert not any(path.startswith(("/runs", "/train", "/mod")) for path in schema["paths"])
