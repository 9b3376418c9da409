"""Every piece's options, one module per piece (`lifelong/options/<piece>.py`), named as the piece.

Each is a pydantic `Section` (lifelong/options/base.py); lifelong/config.py assembles them into
`RunConfig` (the YAML key of a piece's section is its name) and re-exports every class, so
`from lifelong.config import DistillConfig` keeps working. They sit below the config and the pieces
(docs/architecture.md, lifelong/layers.py): an options module imports only `options.base` and pydantic.
"""
