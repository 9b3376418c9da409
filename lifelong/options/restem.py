"""Options of the `restem` piece (lifelong/pieces/restem.py):
the `restem:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifelong.options.base import Section


class RestemConfig(Section):
    """ReSTEM outer loop of SEAL (Zweiger et al. 2025; ReST-EM: Singh et al. 2023): per document, k candidate
    note sets, each scored by training a fresh LoRA on it and quizzing closed-book; the writer is fine-tuned
    on the kept ones. SEAL's knowledge incorporation: 5 candidates per passage, 2 rounds, keep the best."""

    k: int = Field(5, ge=1, le=256, description="candidate note sets per document")
    top_n: int = Field(1, ge=1, description="candidates kept per document (the best by quiz score)")
    require_gain: bool = Field(False, description="keep a candidate only if it beats the no-notes quiz score")
    rounds: int = Field(2, ge=0, le=100, description="ReSTEM rounds per domain (0: the writer only writes)")
    documents_per_round: int | None = Field(4, ge=1, description="documents per domain the rounds use "
                                            "(seeded sample); null = all")
    quiz_split: Literal["train", "eval", "all"] = Field("train", description="questions that quiz a document; "
                                                        "train keeps the eval questions unseen")
    questions_per_document: int = Field(4, ge=1, description="cap on quiz questions per document")
    repeats: int = Field(2, ge=0, le=100, description="extra evaluations of each document's best candidate with "
                         "other seeds, to measure the reward's noise")
    candidate_steps: int = Field(5, ge=1, le=10000, description="optimizer steps per candidate (each on all its notes)")
    candidate_lr: float = Field(3e-3, gt=0, le=1.0, description="embedded model, 5 steps: at 1e-3 not even the "
                                "document's own sentences got a quiz answer right; at 3e-3 they did")
    candidate_r: int = Field(8, ge=1, le=4096, description="LoRA rank of the candidate adapter")
    candidate_alpha: float = Field(16, gt=0)
    candidate_max_length: int = Field(96, ge=8, le=32768, description="tokens per note line")
    target_modules: list[str] | str = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    max_notes: int = Field(8, ge=1, le=1024, description="note lines a candidate trains on")
    max_new_tokens: int = Field(96, ge=1, le=4096, description="tokens the writer generates per note set")
    temperature: float = Field(1.0, gt=0, le=10, description="writer sampling temperature (SEAL: 1.0)")
    top_p: float = Field(0.95, gt=0, le=1)
    writer_lr: float = Field(3e-4, gt=0, le=1.0, description="learning rate of the writer's supervised fine-tuning")
    writer_epochs: int = Field(2, ge=1, le=1000)
    writer_r: int = Field(8, ge=1, le=4096, description="LoRA rank of the writer's adapter")
    writer_alpha: float = Field(16, gt=0)
    add_notes: bool = Field(True, description="add the last round's kept notes to the domain's training examples")
    workers: int = Field(1, ge=1, le=4096, description="Ray workers scoring candidates (the cluster: "
                         "parallel.address); 1 = in this process")
