"""Markdown tables restating the catalog, generated from vocabulary/catalog.py so docs/catalog.md
can never drift from the code (tests/training/test_docs_tables.py compares them)."""

from __future__ import annotations

from pathlib import Path

from vocabulary import catalog

DOC = Path(__file__).resolve().parent.parent / "docs" / "catalog.md"
START, END = "<!-- generated:catalog -->", "<!-- /generated:catalog -->"


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _range(spec: catalog.ParamSpec) -> str:
    if spec.locked:
        return "fixed"
    if spec.options:
        return ", ".join(spec.options)
    if spec.minimum is None:
        return ""
    return f"{_fmt(spec.minimum)}–{_fmt(spec.maximum)}"


def base_model_table() -> str:
    rows = [
        "| key | label | family | media | AI Toolkit ecosystem / variant | engines (default first) |",
        "|---|---|---|---|---|---|",
    ]
    for m in catalog.BASE_MODELS.values():
        engines = [m.default_engine] + [e for e in m.engines if e != m.default_engine]
        eco = (
            f"`{m.ecosystem}`" + (f" / `{m.variant}`" if m.variant else "") if m.ecosystem else "—"
        )
        gate = f" (behind `{m.required_feature}`)" if m.required_feature else ""
        rows.append(
            f"| `{m.key}` | {m.label}{gate} | {m.family} | {m.media_type} | {eco} | "
            f"{', '.join(engines)} |"
        )
    return "\n".join(rows)


def engine_table() -> str:
    rows = ["| engine | orchestrator engine | step | what it is |", "|---|---|---|---|"]
    for e in catalog.ENGINES.values():
        step = "`training`" if e.key == catalog.AI_TOOLKIT else "`imageResourceTraining`"
        rows.append(f"| `{e.key}` | `{e.wire_engine}` | {step} | {e.description} |")
    return "\n".join(rows)


def params_table(base_model: str, engine: catalog.Engine, contract: str) -> str:
    rows = ["| parameter | default | range or options |", "|---|---|---|"]
    for s in catalog.param_specs(base_model, engine, contract):
        default = s.computed if s.computed else _fmt(s.default)
        rows.append(f"| `{s.name}` | {default} | {_range(s)} |")
    return "\n".join(rows)


def ai_toolkit_table() -> str:
    header = "| ecosystem | epochs | resolution | lr | text encoder | network dim | network alpha |"
    rows = [header, "|---|---|---|---|---|---|---|"]
    for eco, d in catalog.AI_TOOLKIT_DEFAULTS.items():
        te = f"trained, lr {_fmt(d.text_encoder_lr)}" if d.train_text_encoder else "not trained"
        rows.append(
            f"| `{eco}` | {d.epochs[0]} ({d.epochs[1]}–{d.epochs[2]}) | {d.resolution} | "
            f"{_fmt(d.lr)} | {te} | {d.network_dim[0]} ({d.network_dim[1]}–{d.network_dim[2]}) | "
            f"{d.network_alpha[0]} ({d.network_alpha[1]}–{d.network_alpha[2]}) |"
        )
    return "\n".join(rows)


def contracts_table() -> str:
    rows = [
        "| | " + " | ".join(f"`{name}`" for name in catalog.CONTRACTS) + " |",
        "|---|" + "---|" * len(catalog.CONTRACTS),
    ]
    vocabularies = list(catalog.CONTRACTS.values())

    def row(label: str, cells: list[str]) -> None:
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    def names(values: object) -> str:
        return ", ".join(f"`{v}`" for v in values) or "—"  # type: ignore[attr-defined]

    row(
        "AI Toolkit ecosystems (variants)",
        [
            ", ".join(
                f"`{e}`" + (f" ({'/'.join(v)})" if v else "")
                for e, v in c.ai_toolkit_ecosystems.items()
            )
            for c in vocabularies
        ],
    )
    row("AI Toolkit optimizers", [names(c.ai_toolkit_optimizers) for c in vocabularies])
    row("AI Toolkit schedulers", [names(c.ai_toolkit_schedulers) for c in vocabularies])
    row(
        "training length",
        [
            f"`steps` {c.ai_toolkit_steps[0]}–{c.ai_toolkit_steps[1]}, `epochs` = checkpoints saved"
            if c.ai_toolkit_steps
            else "`epochs` (× the orchestrator's repeats)"
            for c in vocabularies
        ],
    )
    row("integers only", [names(sorted(c.ai_toolkit_int_fields)) for c in vocabularies])
    row(
        "custom checkpoint with AI Toolkit on",
        [names(sorted(c.ai_toolkit_model_ecosystems)) for c in vocabularies],
    )
    row(
        "`minSnrGamma` with AI Toolkit on",
        [names(sorted(c.ai_toolkit_min_snr_ecosystems)) for c in vocabularies],
    )
    row(
        "not carried (refused with a 400)",
        [
            "; ".join(
                f"{catalog.ENGINES[e].label}: {names(sorted(p))}" for e, p in c.not_carried.items()
            )
            or "—"
            for c in vocabularies
        ],
    )
    return "\n".join(rows)


def renames_table() -> str:
    rows = ["| Kohya name | AI Toolkit name |", "|---|---|"]
    rows += [f"| `{k}` | `{v}` |" for k, v in catalog.KOHYA_TO_AI_TOOLKIT_NAMES.items()]
    rows += [f"| `{k}` | not used by AI Toolkit |" for k in sorted(catalog.NOT_USED_BY_AI_TOOLKIT)]
    return "\n".join(rows)


def generated() -> str:
    parts = [
        "## Base models\n\n" + base_model_table(),
        "## Engines\n\n" + engine_table(),
        "## AI Toolkit defaults per ecosystem\n\n"
        + ai_toolkit_table()
        + f"\n\nScheduler `{catalog.AI_TOOLKIT_DEFAULT_SCHEDULER}` and optimizer "
        f"`{catalog.AI_TOOLKIT_DEFAULT_OPTIMIZER}` by default for every ecosystem.",
        "## Kohya names and AI Toolkit names\n\n" + renames_table(),
        "## What each orchestrator contract accepts\n\n" + contracts_table(),
    ]
    seen: set[tuple[str, str]] = set()
    for contract in catalog.CONTRACTS:
        for m in catalog.BASE_MODELS.values():
            for engine in m.engines:
                table = params_table(m.key, engine, contract)
                key = (engine, table)
                if table.count("\n") < 2 or key in seen:
                    continue  # offered nowhere under this contract, or the same as shown above
                seen.add(key)
                same = [
                    b.key
                    for b in catalog.BASE_MODELS.values()
                    if engine in b.engines and params_table(b.key, engine, contract) == table
                ]
                title = ", ".join(f"`{k}`" for k in same)
                under = "" if contract == catalog.BETA12 else f" under `{contract}`"
                parts.append(
                    f"## Parameters: {catalog.ENGINES[engine].label} on {title}{under}\n\n{table}"
                )
    return "\n\n".join(parts)


def render(current: str) -> str:
    block = f"{START}\n{generated()}\n{END}"
    if START in current and END in current:
        head, rest = current.split(START, 1)
        return head + block + rest.split(END, 1)[1]
    return current.rstrip() + "\n\n" + block + "\n"
