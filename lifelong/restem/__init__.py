"""ReSTEM, SEAL's outer loop: candidate study notes scored in process, the rounds, the note writer.

Modules: `quiz` (which questions test a document), `stats` (rewards, ranking, spreads), `candidates`
(in-process candidate evaluation), `writer` (the note writer and its fine-tuning), `outer` (the
rounds), `fanout` (serial or Ray scoring). The piece is lifelong/pieces/restem.py.
"""
