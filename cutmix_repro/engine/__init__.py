"""The training engine: ``trainer`` (the one loop), ``recorder`` and ``records`` (what a run writes),
``checkpoint``, ``metrics``, ``schedule``, ``distributed``, ``signals``."""
