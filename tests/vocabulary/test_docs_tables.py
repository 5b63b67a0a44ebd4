from __future__ import annotations

from vocabulary.docs_tables import DOC, END, START, render


def test_the_catalog_tables_in_the_docs_match_the_code() -> None:
    current = DOC.read_text()
    assert START in current and END in current
    assert current == render(current), "run: python manage.py docs_tables"


def test_the_generated_tables_name_every_base_model_and_engine() -> None:
    from vocabulary import catalog

    text = DOC.read_text()
    for key in catalog.BASE_MODELS:
        assert f"`{key}`" in text
    for engine in catalog.ENGINES.values():
        assert f"`{engine.wire_engine}`" in text
