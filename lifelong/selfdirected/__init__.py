"""Self-directed learning (DESIGN §5): the model writes its own study material.

`filters` (deduplication, length and overlap filters, diversity) and `base` (what the pieces share)
live here; the pieces themselves are in lifelong/pieces/ (gap_detection, study_notes, star,
critique, and replay's self-synthesized rehearsal).
"""
