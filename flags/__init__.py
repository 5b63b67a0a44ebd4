"""Feature flags: the registry, waffle-backed availability, user preferences and the rollout.

`flags.gates.is_feature_active(user, key)` is the one gate every caller uses (DESIGN.md §6)."""
