from __future__ import annotations

import pytest

from training.orchestrator.contracts.base import air_regex
from vocabulary import catalog

B12_AIR = air_regex(r"a-zA-Z0-9_\-/.=,")
ALL_PAIRS = [(k, e) for k, m in catalog.BASE_MODELS.items() for e in m.engines]


def test_it_offers_every_base_model_of_the_design() -> None:
    assert set(catalog.BASE_MODELS) == {
        "sd_1_5", "anime", "semi", "realistic", "sdxl", "pony", "illustrious", "flux_dev",
        "chroma", "wan_2_1_t2v_14b", "wan_2_1_i2v_14b_720p", "wan_2_2_t2v_a14b", "hy_720_fp8",
        "sd3_medium", "sd3_large",
    }  # fmt: skip


@pytest.mark.parametrize("key", list(catalog.BASE_MODELS))
def test_every_base_model_air_is_valid_on_the_wire(key: str) -> None:
    assert B12_AIR.match(catalog.BASE_MODELS[key].air)


@pytest.mark.parametrize("key", list(catalog.BASE_MODELS))
def test_video_models_default_to_musubi_and_images_to_kohya(key: str) -> None:
    base = catalog.BASE_MODELS[key]
    assert base.default_engine == ("musubi" if base.media_type == "video" else "kohya")
    assert base.default_engine in base.engines


def test_engines_follow_the_media_rules() -> None:
    for base in catalog.BASE_MODELS.values():
        assert ("kohya" in base.engines) == (base.media_type == "image")
        assert ("musubi" in base.engines) == (base.media_type == "video")
        assert ("rapid" in base.engines) == (base.key == "flux_dev")
        assert ("ai-toolkit" in base.engines) == (base.key != "hy_720_fp8")


def test_hunyuan_is_not_offered_ai_toolkit_and_says_why() -> None:
    base = catalog.BASE_MODELS["hy_720_fp8"]
    assert base.ecosystem is None
    assert base.ai_toolkit_unavailable and "Musubi" in base.ai_toolkit_unavailable


@pytest.mark.parametrize(
    ("key", "ecosystem", "variant"),
    [
        ("sd_1_5", "sd1", None), ("anime", "sd1", None), ("pony", "sdxl", None),
        ("illustrious", "sdxl", None), ("flux_dev", "flux1", "dev"), ("chroma", "chroma", None),
        ("wan_2_1_t2v_14b", "wan", "2.1"), ("wan_2_1_i2v_14b_720p", "wan", "2.1"),
        ("wan_2_2_t2v_a14b", "wan", "2.2"), ("sd3_medium", "sd3", "medium"),
        ("sd3_large", "sd3", "large"),
    ],
)  # fmt: skip
def test_each_base_model_maps_to_its_ai_toolkit_ecosystem_and_variant(
    key: str, ecosystem: str, variant: str | None
) -> None:
    base = catalog.BASE_MODELS[key]
    assert (base.ecosystem, base.variant) == (ecosystem, variant)
    allowed = catalog.AI_TOOLKIT_VARIANTS[ecosystem]
    assert (variant in allowed) if allowed else variant is None


def test_sd3_sits_behind_its_own_feature() -> None:
    assert catalog.BASE_MODELS["sd3_medium"].required_feature == "sd3Training"
    assert all(
        m.required_feature is None for m in catalog.BASE_MODELS.values() if m.base_type != "sd35"
    )


@pytest.mark.parametrize(("key", "engine"), ALL_PAIRS)
def test_every_default_sits_inside_its_own_range(key: str, engine: catalog.Engine) -> None:
    for spec in catalog.param_specs(key, engine, "beta12"):
        if spec.default is None:
            assert spec.nullable or spec.computed, spec.name
            continue
        if spec.kind == "enum":
            assert spec.default in spec.options
        if spec.kind in ("int", "float"):
            assert spec.minimum is not None and spec.maximum is not None
            assert spec.minimum <= spec.default <= spec.maximum, spec.name  # type: ignore[operator]


def test_it_takes_the_per_model_kohya_settings_from_civitai() -> None:
    pony = catalog.param_spec_map("pony", "kohya", "beta12")
    assert pony["optimizerType"].default == "Prodigy"
    assert pony["trainBatchSize"].default == 5
    assert pony["noiseOffset"].default == 0.03
    anime = catalog.param_spec_map("anime", "kohya", "beta12")
    assert (anime["clipSkip"].default, anime["networkDim"].default) == (2, 16)
    flux = catalog.param_spec_map("flux_dev", "kohya", "beta12")
    assert flux["textEncoderLR"].locked and flux["textEncoderLR"].default == 0


def test_ai_toolkit_settings_follow_the_plan_per_ecosystem() -> None:
    sd1 = catalog.param_spec_map("sd_1_5", "ai-toolkit", "beta12")
    assert (sd1["epochs"].minimum, sd1["epochs"].maximum, sd1["epochs"].default) == (5, 20, 5)
    assert sd1["trainTextEncoder"].default is True and sd1["textEncoderLr"].default == 0.00005
    wan = catalog.param_spec_map("wan_2_2_t2v_a14b", "ai-toolkit", "beta12")
    assert (wan["epochs"].minimum, wan["epochs"].maximum) == (2, 10)
    assert wan["lr"].default == 0.0002 and wan["resolution"].default == 512
    flux = catalog.param_spec_map("flux_dev", "ai-toolkit", "beta12")
    assert (flux["networkDim"].minimum, flux["networkDim"].maximum) == (8, 32)
    assert flux["trainTextEncoder"].locked
    assert "numRepeats" not in flux and "trainBatchSize" not in flux


def test_repeats_default_aims_at_two_hundred_images_per_epoch() -> None:
    assert catalog.computed_num_repeats(24) == 9
    assert catalog.computed_num_repeats(1) == 200
    assert catalog.computed_num_repeats(1000) == 1
