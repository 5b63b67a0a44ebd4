"""The emulator's price and ETA model (docs/emulator.md, "Cost model"). Integers of Buzz.

The real orchestrator prices server-side and publishes no formula; these are Civitai's published
per-epoch AI Toolkit prices and its historical client formulas (civitai-trainer-facts.md §7),
simplified so a test can compute the expected number by hand.
"""

from __future__ import annotations

import math

from emulator.records import StepPlan

AI_TOOLKIT_EPOCH_PRICE = {
    "sd1": 50,
    "sdxl": 50,
    "flux1": 200,
    "chroma": 200,
    "sd3": 150,
    "wan": 300,
}
AI_TOOLKIT_OTHER_EPOCH_PRICE = 100
# beta86 prices AI Toolkit by `steps`: the published price of each ecosystem's default run
# (Buzz, steps), charged in proportion to the steps asked for (facts §7.3, "steps" pages).
AI_TOOLKIT_STEP_PRICE: dict[str, tuple[int, int]] = {
    "sd1": (500, 2000),
    "sdxl": (500, 2000),
    "flux1": (2000, 2000),
    "chroma": (2000, 2000),
    "qwen": (2000, 2000),
    "ernie": (1000, 2000),
    "zimageturbo": (1000, 2000),
    "zimagebase": (1000, 2000),
    "ltx2": (2750, 3000),
    "ltx23": (2750, 3000),
}
AI_TOOLKIT_OTHER_STEP_PRICE = (1000, 2000)
KOHYA_STEP_RATE = {
    "sd1": 0.5,
    "sdxl": 1.0,
    "pony": 1.0,
    "illustrious": 1.0,
    "flux1": 1.5,
    "chroma": 1.5,
    "sd3": 1.5,
}
KOHYA_OTHER_STEP_RATE = 1.0
KOHYA_MINIMUM = 500
RAPID_BASE = 4000
MUSUBI_MINIMUM = 1000
HIGH_PRIORITY_MINIMUM = 100


def _half_up(value: float) -> int:
    # Python's round() rounds halves to even; a price should not depend on that.
    return math.floor(value + 0.5)


def kohya_steps(plan: StepPlan) -> int:
    work = plan.image_count * plan.num_repeats * plan.priced_epochs
    return max(0, math.ceil(work / max(1, plan.batch_size)))


def ai_toolkit_step_price(ecosystem: str, steps: int) -> int:
    buzz, per_steps = AI_TOOLKIT_STEP_PRICE.get(ecosystem, AI_TOOLKIT_OTHER_STEP_PRICE)
    return _half_up(steps * buzz / per_steps)


def base_price(plan: StepPlan) -> int:
    if plan.family == "ai-toolkit" and plan.steps is not None:
        return ai_toolkit_step_price(plan.ecosystem, plan.steps)
    if plan.family == "ai-toolkit":
        per_epoch = AI_TOOLKIT_EPOCH_PRICE.get(plan.ecosystem, AI_TOOLKIT_OTHER_EPOCH_PRICE)
        return per_epoch * plan.priced_epochs
    if plan.family == "rapid":
        return RAPID_BASE + 500 * max(0, math.ceil((plan.image_count - 200) / 100))
    if plan.family == "musubi":
        return max(MUSUBI_MINIMUM, 100 * plan.priced_epochs * math.ceil(plan.image_count / 10))
    rate = KOHYA_STEP_RATE.get(plan.model_ecosystem, KOHYA_OTHER_STEP_RATE)
    return max(KOHYA_MINIMUM, _half_up(kohya_steps(plan) * rate))


def price(plan: StepPlan) -> int:
    cost = base_price(plan)
    tenth = _half_up(cost / 10)
    if plan.priority == "high":
        return cost + max(HIGH_PRIORITY_MINIMUM, tenth)
    if plan.priority == "low":
        return cost - tenth
    return cost


def eta_minutes(plan: StepPlan, *, queue_seconds: float, seconds_per_epoch: float) -> float:
    return (plan.epochs * seconds_per_epoch + queue_seconds) / 60
