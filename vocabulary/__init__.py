"""The training vocabulary (DESIGN.md §2, §3): the catalog of base models and engines and the
parameter rules. Pure Python at the bottom of the layers: it imports no app."""
