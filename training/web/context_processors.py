"""`training.web.context_processors.navigation`: the navigation bar's facts for every template."""

from training.web.present import navigation

__all__ = ["navigation"]
