"""Forgetting diagnostics: measurements of why a model forgot, one module per mechanism.

- `gradient_conflict`: cosine between the new domain's gradient and earlier domains' / the canary's,
  per layer group (forgetting grows as the similarity turns negative; Lopez-Paz & Ranzato 2017,
  Riemer et al. 2019).
- `drift`: linear CKA (Kornblith et al. 2019) and relative drift of hidden states per layer on a fixed
  probe set, and the drift of attention outputs, lower against upper layers.
- `sharpness`: loss rise under small random and gradient-direction weight perturbations
  (Keskar et al. 2017; Mirzadeh et al. 2020 tie flat minima to less forgetting).
- `rotation`: orthogonal Procrustes between old and new features (Schoenemann 1966) and the share of
  the drift a rotation explains.
- `collapse`: entropy and distinct-n of free generations (Li et al. 2016 for distinct-n).
- `attribution`: restore one layer group to its pre-round weights and measure how much of a regressed
  score returns.

Every module holds pure functions on tensors, texts or models; `suite.Diagnoser` combines them for the
`diagnostics` piece (lifelong/pieces/diagnostics.py) and for `lifelong eval --diagnose-against`.
"""
