"""The run configuration: one YAML file validated on load (DESIGN §2).

Precedence, lowest first: defaults, the settings the stream recommends (its stream.yaml's
`settings`), the condition's preset (lifelong/presets/<c>.yaml), the user's config file,
command-line flags. Errors name the key, and the file and line when known.
"""

from __future__ import annotations

import contextlib
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lifelong.errors import ConfigError

CONDITIONS = ("a", "b", "c", "d", "e", "f")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-4` as a string; config files mean a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainingConfig(Section):
    lr: float = Field(1e-4, gt=0, le=1.0, description="peak learning rate")
    epochs: int = Field(6, ge=1, le=1000)
    batch_size: int = Field(4, ge=1, le=4096)
    grad_accum: int = Field(1, ge=1, le=1024, description="micro-batches per optimizer step")
    max_length: int = Field(256, ge=8, le=32768, description="tokens per training example")
    group_by_length: bool = Field(False, description="batch examples of similar length together (less padding); "
                                  "the order stays seeded and random at the level of batches")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler_type: Literal["auto", "constant", "linear", "cosine"] = Field(
        "auto", description="the learning-rate schedule within each domain (transformers' names): auto = linear "
        "decay to 0 when warmup_ratio > 0, else constant")
    weight_decay: float = Field(0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    train_questions: bool = Field(True, description="also train on the domain's split=train questions")
    log_every: int = Field(5, ge=1, description="optimizer steps between log.jsonl training points")
    curve_every: int = Field(0, ge=0, description="steps between in-domain evals (learning efficiency); 0 = per epoch")
    max_grad_norm_fault: float | None = Field(1e4, gt=0, description="a gradient norm above this (or not finite) is "
                                              "a numerical fault; null = only non-finite norms")
    fault_lr_factor: float = Field(0.5, gt=0, le=1, description="after the first numerical fault of a round the "
                                   "learning rate is multiplied by this")
    fault_snapshot: bool = Field(True, description="keep the trainable weights and optimizer state of the last "
                                 "good step in memory (about 3x the trainable parameters) to return to on a fault")


class ParallelConfig(Section):
    """Independent runs fanned out as Ray tasks (lifelong/parallel.py, docs/scale.md)."""

    workers: int = Field(1, ge=1, le=1024, description="`lifelong compare`: conditions run at once as Ray "
                         "tasks; 1 = one after another in this process")
    address: str | None = Field(None, description="Ray cluster to use (else $RAY_ADDRESS, else a local instance)")
    gpus_per_task: float = Field(0, ge=0, description="GPUs Ray reserves for each task (e.g. 1 on a GPU cluster)")


class PromptConfig(Section):
    mode: Literal["few_shot", "chat"] = "few_shot"
    template: str = "Question: {question}\nAnswer:"
    examples: list[tuple[str, str]] = [
        ("What is the capital of France?", "Paris"),
        ("How many legs does a spider have?", "eight"),
    ]
    separator: str = "\n\n"


class EvaluationConfig(Section):
    prompt: PromptConfig = PromptConfig()
    batch_size: int = Field(16, ge=1, le=4096)
    max_items: int | None = Field(None, ge=1, description="cap on eval items per domain (seeded sample)")
    max_new_tokens: int = Field(32, ge=1, le=2048, description="chat mode: tokens generated per answer")
    exams: bool = Field(True, description="also score each domain's exam questions (exam/<domain>.jsonl)")
    exam_max_items: int | None = Field(None, ge=1, description="cap on exam items per domain (seeded sample); "
                                       "null = max_items")
    exam_rows: Literal["all", "own", "ends"] = Field("all", description="rows that score the exams: all; own "
                                                     "(before training, right after the exam's own domain, after "
                                                     "the last domain); or ends (before training and after the "
                                                     "last domain). The other cells of exam_matrix are null")
    perplexity_docs: int = Field(16, ge=0, description="documents per domain whose perplexity is logged; 0 = none")
    progress: bool = True
    self_teaching_quality: bool = Field(False, description="also train each domain on its documents alone for "
                                        "the same number of optimizer steps from the same weights, score it, "
                                        "restore, and report self_teaching_quality (doubles training)")


class FullFinetuneConfig(Section):
    pass


class LoraPieceConfig(Section):
    """PEFT's LoraConfig names; `after_domain` says what happens to the adapter after each domain."""

    r: int = Field(16, ge=1, le=4096)
    lora_alpha: float = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    rank_pattern: dict[str, int] = {}
    alpha_pattern: dict[str, float] = {}
    use_rslora: bool = Field(False, description="scale the adapter by lora_alpha / sqrt(r) instead of "
                                                "lora_alpha / r (rsLoRA, Kalajdzievski 2023)")
    loraplus_lr_ratio: float | None = Field(None, gt=0, description="LoRA+ (Hayou et al. 2024): the B matrices "
                                            "train at this multiple of the A matrices' learning rate; null = 1")
    after_domain: Literal["merge", "continue"] = "merge"


class LayerwiseLrConfig(Section):
    """Layer-wise LR decay (Howard & Ruder 2018; Clark et al. 2020): lr_l = lr * xi^(L-l)."""

    xi: float = Field(0.9, gt=0, le=1, description="decay per layer going down; embeddings get lr * xi^L")


class UnfreezingConfig(Section):
    """Gradual unfreezing (ULMFiT, Howard & Ruder 2018): top layer first, one more per epoch or k steps."""

    every: Literal["epoch", "steps"] = Field("epoch", description="unfreeze one more layer every epoch (ULMFiT) "
                                                                   "or every `every_steps` optimizer steps")
    every_steps: int = Field(10, ge=1, description="steps between unfreezing two layers when every: steps")


class FreezingConfig(Section):
    """Selective freezing: the bottom n transformer layers and/or parameters matching `names`."""

    bottom_n: int = Field(0, ge=0, description="freeze transformer layers 0..n-1 (with LoRA: their adapters)")
    names: list[str] = Field([], description="a parameter is frozen if a pattern is a substring of its name "
                                             "or a regular expression matching its whole name")
    embeddings: bool = Field(False, description="also freeze the embeddings (tied embeddings: the head too)")

    @field_validator("names")
    @classmethod
    def _valid_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({error})") from None
        return patterns


class EwcConfig(Section):
    """Online Elastic Weight Consolidation (Kirkpatrick et al. 2017; Schwarz et al. 2018)."""

    ewc_lambda: float = Field(100.0, ge=0, description="penalty strength lambda in lambda/2 * sum F (theta - anchor)^2")
    gamma: float = Field(1.0, ge=0, le=1, description="decay of the running Fisher: F = gamma * F_old + F_new")
    fisher_samples: int = Field(64, ge=1, description="training examples per round used to estimate the Fisher")


class ReplayConfig(Section):
    """Replay of a core set plus a buffer of earlier domains' examples, mixed into every batch."""

    ratio: float = Field(0.2, ge=0, lt=1, description="share of each batch drawn from core set + buffer")
    buffer_size: int = Field(200, ge=0, description="examples of earlier domains kept in the buffer")
    policy: Literal["reservoir", "balanced"] = Field("reservoir", description="reservoir: uniform over everything "
                                                     "seen (Vitter); balanced: equal share per domain")
    core: bool = Field(True, description="replay the stream's core set (its documents and split=train questions)")
    core_share: float | None = Field(None, ge=0, le=1, description="share of the old examples drawn from the core "
                                     "set (the rest from the buffer of earlier domains); null = one pool, each "
                                     "old example equally likely")
    synthetic: int = Field(0, ge=0, le=10000, description="self-synthesized rehearsal: texts the model writes per "
                           "earlier domain at each round's start, replayed beside the buffer; 0 = off")
    synthetic_prompt: str = Field(
        "Here are notes about one topic:\n{examples}\n\nWrite one more short note about the same topic, "
        "in the same style.", description="rehearsal prompt; {examples}: a few buffered texts of the domain, "
        "{domain}: its name")
    synthetic_examples: int = Field(3, ge=0, le=64, description="buffered texts of the domain shown in the prompt")


class PracticeConfig(Section):
    """Rule-made practice from documents (lifelong/pieces/practice.py)."""

    questions: bool = Field(True, description="wh-questions: a number, name or colour of a sentence asked for")
    cloze: bool = Field(True, description="cloze deletions: 'Fill in the blank: ... ___ ...' for the same spans")
    restatements: bool = Field(True, description="'X is Y.' also as the question 'What is X?' and the text "
                               "'Y is X.' (both directions of recall)")
    max_answer_words: int = Field(6, ge=1, le=100, description="drop items whose answer is longer")
    max_per_document: int = Field(40, ge=1, le=10000, description="practice questions kept per document")
    repeats: int = Field(1, ge=1, le=100, description="times each practice item appears in a round's examples")


class DistillConfig(Section):
    """Distillation towards the first round's predictions on the core set (lifelong/pieces/distill.py)."""

    alpha: float = Field(1.0, ge=0, description="weight of the distillation term beside the language-model loss")
    batch_size: int = Field(2, ge=1, le=4096, description="core examples distilled at every step")
    examples: int = Field(256, ge=1, description="core examples whose predictions are kept")
    top_k: int = Field(32, ge=1, le=4096, description="most likely next tokens kept per position")
    max_length: int = Field(128, ge=8, le=32768, description="tokens per distilled example")
    focus: Literal["all", "answers"] = Field("all", description="all: every position of the core examples as "
                                             "trained, pooled; answers: a core question in the evaluation's "
                                             "prompt, at the positions that predict its answer only, a document "
                                             "at every position, every example weighing the same (it kept less "
                                             "of the canary: docs/documents_only.md)")


class SelfDirectedConfig(Section):
    """What every self-directed piece shares: the teacher's decoding and the filters against collapse."""

    max_new_tokens: int = Field(96, ge=1, le=4096, description="cap on tokens generated per text")
    temperature: float = Field(0.8, ge=0, le=5, description="sampling temperature; 0 = greedy")
    top_p: float = Field(0.95, gt=0, le=1)
    batch_size: int = Field(8, ge=1, le=4096, description="prompts per generate call")
    dedup_threshold: float = Field(0.7, gt=0, le=1, description="drop a text whose ROUGE-L F with a kept one "
                                   "(or a real text) is at or above this (Self-Instruct: 0.7)")
    min_words: int = Field(4, ge=0, description="drop generated texts shorter than this")
    max_words: int = Field(300, ge=1, description="drop generated texts longer than this")
    min_source_overlap: float = Field(0.2, ge=0, le=1, description="drop a text when less than this share of "
                                      "its words occur in its source (off topic); 0 = off")
    max_source_rouge: float = Field(0.95, gt=0, le=1, description="drop a text whose ROUGE-L F with its source is "
                                    "at or above this (a copy, nothing new)")
    real_share: float = Field(0.25, ge=0, lt=1, description="at least this share of a round's examples is real "
                              "text (documents, practice questions), repeated if needed")


class GapDetectionConfig(Section):
    """Autonomous Learning: questions about each document, answered open- and closed-book; train on the gaps."""

    questions_per_document: int = Field(3, ge=1, le=100)
    prompt: str = Field("Read the passage and write {n} short questions about its facts, each followed by its "
                        "short answer taken from the passage. Use the format:\nQ: <question>\nA: <answer>"
                        "\n\nPassage: {document}", description="{n}: questions wanted, {document}: the text")
    answer_tokens: int = Field(24, ge=1, le=512, description="cap on tokens of an open- or closed-book answer")
    min_f1: float = Field(0.8, ge=0, le=1, description="an answer is right when it contains the written answer "
                          "or its token F1 with it reaches this (0.8: 'Lake Orrim' is not 'Lake Vessim')")
    with_document: bool = Field(True, description="also train on the documents")


class StudyNotesConfig(Section):
    """SEAL study notes: several sets of implications per document; train on them."""

    sets_per_document: int = Field(3, ge=1, le=100, description="note sets sampled per document")
    prompt: str = Field("Read the passage and list its implications: the facts restated in other words, "
                        "inferences and consequences, one per line.\n\nPassage: {document}",
                        description="{document}: the text")
    with_document: bool = Field(True, description="also train on the documents themselves")


class StarConfig(Section):
    """STaR: rationales for the domain's split=train questions; wrong ones rationalised with the answer."""

    prompt: str = Field("{question}\nThink step by step, then give the final answer on the last line as "
                        "'Answer: <answer>'.", description="{question}: the question (with its choices for mc)")
    hint_prompt: str = Field("{question}\nThe correct answer is {answer}. Explain step by step why, then give "
                             "the final answer on the last line as 'Answer: <answer>'.",
                             description="rationalisation: {question} and {answer}")
    rationalize: bool = Field(True, description="rationalise the questions answered wrongly, with the answer as hint")
    max_items: int | None = Field(None, ge=1, description="cap on questions per domain")


class CritiqueConfig(Section):
    """SELF: the teacher critiques each generated text against its source, and revises or drops it."""

    prompt: str = Field("Source: {source}\n\nText: {text}\n\nIs everything the text says correct according "
                        "to the source? Reply 'yes' or 'no', then say what is wrong.",
                        description="{source}: the document or question, {text}: the generated text")
    revise_prompt: str = Field("Source: {source}\n\nText: {text}\n\nProblems: {critique}\n\nRewrite the "
                               "text so that it is correct according to the source. Reply with the text only.",
                               description="{source}, {text}, {critique}")
    revise: bool = Field(True, description="replace a rejected text by its revision (if that passes the "
                         "filters) instead of dropping it")
    unclear: Literal["keep", "drop"] = Field("keep", description="a critique that says neither yes nor no")
    critique_tokens: int = Field(48, ge=1, le=1024)


class SamConfig(Section):
    """Sharpness-aware minimisation (Foret et al. 2021)."""

    rho: float = Field(0.05, ge=0, description="radius of the adversarial weight perturbation")


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


DIAGNOSTIC_MEASUREMENTS = ("gradient_conflict", "drift", "sharpness", "rotation", "collapse", "attribution")


class DiagnosticsConfig(Section):
    """Forgetting diagnostics after every round (lifelong/diagnostics/); probe sizes bound their cost."""

    measurements: list[Literal["gradient_conflict", "drift", "sharpness", "rotation", "collapse", "attribution"]] = \
        Field(list(DIAGNOSTIC_MEASUREMENTS), description="which measurements run")
    layer_groups: int = Field(3, ge=1, le=64, description="block groups besides the embeddings (3: lower, middle, "
                              "upper)")
    probe_texts: int = Field(48, ge=2, le=4096, description="fixed probe texts for drift, CKA and rotation")
    probe_length: int = Field(64, ge=4, le=4096, description="tokens per probe text")
    probe_tokens: int = Field(2048, ge=8, description="probe tokens kept per layer (features are per token)")
    grad_examples: int = Field(8, ge=1, le=4096, description="examples per source for the gradients and "
                               "the sharpness loss")
    score_items: int | None = Field(16, ge=1, description="eval items per earlier domain / canary scored before "
                                    "and after the round (regressions, attribution); null = all")
    batch_size: int = Field(8, ge=1, le=4096)
    sharpness_radii: list[float] = Field([0.01, 0.03], description="random directions: relative radii "
                                         "(each tensor moves by rho ||w_t||)")
    sharpness_samples: int = Field(1, ge=0, le=100, description="random directions averaged per radius")
    sharpness_gradient_radii: list[float] = Field([0.01, 0.05], description="gradient direction: absolute "
                                                  "radii, as SAM's rho (e = rho g / ||g||)")
    rotation_holdout: float = Field(0.5, ge=0, lt=1, description="share of probe tokens the Procrustes map is "
                                    "scored on but not fitted to; 0 = in-sample only")
    generation_prompts: list[str] | None = Field(None, description="prompts for free generation (collapse); "
                                                 "null = built-in open prompts")
    generation_tokens: int = Field(32, ge=1, le=2048)
    generation_sample: bool = Field(False, description="sample (seeded) instead of greedy decoding")

    @field_validator("sharpness_radii", "sharpness_gradient_radii")
    @classmethod
    def _non_negative(cls, radii: list[float]) -> list[float]:
        if any(r < 0 for r in radii):
            raise ValueError("radii must be >= 0")
        return radii


class FastAdaptersConfig(Section):
    """The fast system: one LoRA adapter per episode at a high learning rate (complementary learning systems)."""

    r: int = Field(16, ge=1, le=4096)
    lora_alpha: float = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lr: float | None = Field(2e-3, gt=0, le=1.0, description="episode adapters' learning rate; null = training.lr")
    inference: Literal["route", "stack"] = Field("route", description="route: each input uses the adapter of the "
                                                  "episode its text is most like (or none); stack: every adapter")
    route_threshold: float = Field(0.15, ge=0, le=1, description="least TF-IDF cosine, over distinctive words "
                                   "(not one token), between an input and an episode's text to use its adapter")
    route_threshold_common: float = Field(0.4, ge=0, le=1, description="the same for an input made only of "
                                          "common words")


class ConsolidationConfig(Section):
    """The slow system: "sleep" distils the episode adapters into the base weights, then drops them."""

    every: int = Field(3, ge=0, description="sleep after every `every` episodes; 0 = only on command")
    lr: float = Field(1e-3, gt=0, le=1.0, description="learning rate of the consolidation adapter")
    epochs: int = Field(2, ge=1, le=100)
    batch_size: int = Field(8, ge=1, le=4096)
    r: int = Field(16, ge=1, le=4096, description="rank of the consolidation adapter merged into the base")
    lora_alpha: float = Field(32, gt=0)
    xi: float = Field(0.9, gt=0, le=1, description="layer-wise LR decay of the consolidation adapter")
    ewc_lambda: float = Field(100.0, ge=0, description="online EWC strength over the consolidation adapter")
    replay_examples: int = Field(64, ge=0, description="old examples (core set + replay buffer) mixed in")
    temperature: float = Field(1.0, gt=0, description="distillation temperature")
    max_canary_drop: float = Field(0.05, ge=0, le=1, description="self-test: the canary may fall by at most this "
                                   "fraction of its pre-sleep score")
    min_transfer: float = Field(0.5, ge=0, le=1, description="self-test: share of the adapters' log-perplexity "
                                "gain on the episodes' documents the base must keep")
    min_answer_transfer: float = Field(0.5, ge=0, le=1, description="self-test: share of the adapters' "
                                       "closed-book accuracy gain on the episodes' practice questions the base "
                                       "must keep (not checked where the episodes have no practice questions)")


class SelfTestRepairConfig(Section):
    """What the self-test does about a regression before it rolls back."""

    attempts: int = Field(1, ge=0, le=10, description="repair rounds before a rollback; 0 = roll back at once")
    start: Literal["snapshot", "current"] = Field("snapshot", description="retrain the round from the weights it "
                                                  "started from, or continue from the regressed weights")
    replay_ratio: float = Field(0.5, ge=0, lt=1, description="share of the repair round's examples drawn from the "
                                "regressed capabilities' stored examples (canary: the core set)")
    ewc_lambda: float = Field(1000.0, ge=0, description="EWC strength pulling the weights the regressed capability "
                              "needs towards the round's starting weights (10x the ewc piece's default)")
    ewc_growth: float = Field(10.0, ge=1, description="ewc_lambda is multiplied by this for every further attempt")
    fisher_samples: int = Field(64, ge=1, description="stored examples used to estimate the repair's Fisher")
    epochs: int | None = Field(None, ge=1, le=1000, description="epochs of a repair round over the round's "
                               "examples plus the targeted replay; null = training.epochs")
    lr_factor: float = Field(0.5, gt=0, le=1, description="the repair round trains at training.lr times this")
    mode: Literal["retrain", "recover"] = Field("retrain", description="retrain: the round is trained again with "
                                                "the targeted replay mixed in (`start`); recover: from the "
                                                "regressed weights, train on the regressed capabilities' stored "
                                                "examples alone, checking them every `check_every` steps, until "
                                                "they pass or `recover_steps` steps are done")
    recover_steps: int = Field(40, ge=1, le=100000, description="recover: most optimizer steps of one attempt")
    check_every: int = Field(5, ge=1, description="recover: optimizer steps between checks of the regressed "
                             "capabilities")


class SelfTestConfig(Section):
    """Self-testing (DESIGN §5): canary and diagnostic checks, regression rule, repair and rollback."""

    canary_every: int = Field(5, ge=0, description="optimizer steps between canary checks inside a round "
                              "(an alarm ends the round early); 0 = only after the round")
    on_alarm: Literal["restore", "stop", "continue"] = Field("restore", description="at an in-round canary "
                                                             "alarm: end the round at the weights of its last check "
                                                             "that passed (or its start), end it where it is, or go on")
    diagnostic_every: int = Field(1, ge=1, description="rounds between full diagnostic suites (every domain "
                                  "learned so far and the diagnostic tasks); always run on a canary alarm")
    abs_drop: float = Field(0.02, ge=0, le=1, description="a drop must exceed max(abs_drop, rel_drop * before)")
    rel_drop: float = Field(0.05, ge=0, le=1)
    confidence: float = Field(0.95, ge=0.5, lt=1, description="one-sided confidence that a drop (or a downward "
                              "trend) is beyond the binomial noise of the number of items")
    cumulative: bool = Field(True, description="also compare with each capability's first score (the canary: "
                             "before any training; a domain: right after it was learned), so losses within noise "
                             "per round cannot add up")
    trend: bool = Field(True, description="also flag slow drift: a significant, material downward trend over rounds")
    trend_min_points: int = Field(4, ge=3, description="scores in the history before the trend test runs")
    trend_window: int = Field(0, ge=0, description="last scores the trend test fits; 0 = the whole history")
    rollback: bool = Field(True, description="roll back a round whose regression outlives the repairs; false keeps "
                           "it, logged as kept")
    diagnostic_tasks: list[str] = Field([], description="lm-evaluation-harness task YAML files scored as extra "
                                        "diagnostic capabilities (paths relative to the working folder)")
    repair: SelfTestRepairConfig = SelfTestRepairConfig()


class GeneralConfig(Section):
    """The built-in general set (lifelong/data/general.py) stands in for what a stream lacks."""

    core: bool = Field(True, description="a stream without a core set replays (and the self-test repairs "
                       "from) the general core: country facts, antonyms, plurals, general definitions")
    canary: bool = Field(True, description="a stream without a canary is scored on a canary of the general "
                         "candidates its base model answers right (selected once per model and cached)")
    canary_size: int = Field(120, ge=1, le=10000, description="items in that canary (fewer when the model "
                             "answers fewer candidates right)")
    canary_min_prob: float = Field(0.5, ge=0, lt=1, description="a candidate joins the canary only when the base "
                                   "model gives its answer's tokens at least this geometric-mean probability; "
                                   "0 = any right answer, however narrow (docs/documents_only.md)")


class RunConfig(Section):
    model: str = "smollm2-135m"
    teacher: str | None = None
    stream: str = Field("five-domains", description="a built-in stream (five-domains, prepared on first use; "
                        "example, shipped), a stream.yaml or a folder")
    condition: Literal["a", "b", "c", "d", "e", "f"] = "d"
    pieces: list[str] | None = Field(None, description="explicit piece list; default: the condition's preset")
    seed: int = Field(0, ge=0)
    out: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    mixed_precision: Literal["no", "bf16", "auto"] = Field(
        "no", description="bf16: forward passes under bfloat16 autocast over float32 weights (Accelerate's name); "
        "auto: bf16 where the device computes it natively (CUDA bf16, CPU AVX512-BF16/AMX), else no")
    threads: int | None = Field(None, ge=1, le=4096, description="CPU threads for tensor operations; "
                                "null = torch's default (OMP_NUM_THREADS, else the physical cores)")
    device: str | None = None
    checkpoint_keep: int = Field(1, ge=1, le=1000, description="checkpoints kept on disk (domain and mid-domain)")
    checkpoint_every: int = Field(0, ge=0, description="optimizer steps between mid-domain checkpoints; "
                                  "0 = a checkpoint only after each domain")
    parallel: ParallelConfig = ParallelConfig()
    general: GeneralConfig = GeneralConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    full_finetune: FullFinetuneConfig = FullFinetuneConfig()
    lora: LoraPieceConfig = LoraPieceConfig()
    layerwise_lr: LayerwiseLrConfig = LayerwiseLrConfig()
    unfreezing: UnfreezingConfig = UnfreezingConfig()
    freezing: FreezingConfig = FreezingConfig()
    ewc: EwcConfig = EwcConfig()
    replay: ReplayConfig = ReplayConfig()
    practice: PracticeConfig = PracticeConfig()
    distill: DistillConfig = DistillConfig()
    sam: SamConfig = SamConfig()
    self_directed: SelfDirectedConfig = SelfDirectedConfig()
    gap_detection: GapDetectionConfig = GapDetectionConfig()
    study_notes: StudyNotesConfig = StudyNotesConfig()
    star: StarConfig = StarConfig()
    critique: CritiqueConfig = CritiqueConfig()
    self_test: SelfTestConfig = SelfTestConfig()
    fast_adapters: FastAdaptersConfig = FastAdaptersConfig()
    consolidation: ConsolidationConfig = ConsolidationConfig()
    restem: RestemConfig = RestemConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    return data


def _key_lines(path: Path) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every key in a YAML mapping, by dotted path."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*prefix, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)

    with contextlib.suppress(yaml.YAMLError):
        walk(yaml.compose(path.read_text(encoding="utf-8")), ())
    return lines


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def preset(condition: str) -> dict:
    """The condition's preset: which pieces are on and the settings tuned for them."""
    if condition not in CONDITIONS:
        raise ConfigError(f"key 'condition': unknown condition {condition!r} (choose from {', '.join(CONDITIONS)})")
    text = resources.files("lifelong").joinpath("presets", f"{condition}.yaml").read_text(encoding="utf-8")
    return yaml_load(text) or {}


def parse_assignment(assignment: str) -> dict:
    """`training.lr=1e-4` -> {"training": {"lr": 1e-4}} (the value is read as YAML)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. training.lr=1e-4")
    value: Any = yaml_load(raw) if raw.strip() else None
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value


def _describe(error: ValidationError, source: str, lines: dict[tuple[str, ...], int], key_prefix: str = "") -> str:
    first = error.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    key = key_prefix + ".".join(loc)
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{source}:{line}" if line else source
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif "input" in first and first["type"] != "missing":
        message += f" (got {first['input']!r})"
    return f"{where}: key '{key}': {message}"


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Defaults < the stream's recommended settings < condition preset < config file < overrides (flags),
    validated as one."""
    user = _read_yaml(Path(path)) if path else {}
    overrides = overrides or {}
    condition = overrides.get("condition") or user.get("condition") or RunConfig().condition
    if not isinstance(condition, str):
        raise ConfigError(f"{path or 'config'}: key 'condition': must be one of {', '.join(CONDITIONS)}")
    stream = overrides.get("stream") or user.get("stream") or RunConfig().stream
    recommended = _stream_settings(stream)
    merged = deep_merge(deep_merge(deep_merge(recommended, preset(condition)), user), overrides)
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as error:
        source = str(path) if path else "command line"
        raise ConfigError(_describe(error, source, _key_lines(Path(path)) if path else {})) from None


def _stream_settings(stream: object) -> dict:
    """The stream's recommended settings, checked on their own so that an error names its stream.yaml."""
    from lifelong.data.stream import stream_settings

    if not isinstance(stream, str | Path):
        return {}
    settings, source = stream_settings(stream)
    if settings:
        try:
            RunConfig.model_validate(settings)
        except ValidationError as error:
            found = _key_lines(source) if source is not None and source.is_file() else {}
            lines = {key[1:]: line for key, line in found.items() if key[:1] == ("settings",) and len(key) > 1}
            raise ConfigError(_describe(error, str(source), lines, key_prefix="settings.")) from None
    return settings


def load_saved_config(path: Path) -> RunConfig:
    """A config this program wrote earlier (a run's or a learner's state); keys this version no longer
    knows (written by an older version) are dropped and named on stderr."""
    data = yaml_load(path.read_text(encoding="utf-8")) or {}
    dropped = _drop_unknown(data, RunConfig)
    if dropped:
        print(f"note: {path}: ignoring key(s) this version does not know: {', '.join(dropped)}", file=sys.stderr)
    try:
        return RunConfig.model_validate(data)
    except ValidationError:
        return load_config(path)  # the same error, named by key and line


def _drop_unknown(data: dict, section: type[BaseModel], prefix: str = "") -> list[str]:
    dropped = []
    for key in list(data):
        field = section.model_fields.get(key)
        if field is None:
            dropped.append(prefix + key)
            del data[key]
        elif isinstance(data[key], dict) and isinstance(field.annotation, type) \
                and issubclass(field.annotation, BaseModel):
            dropped += _drop_unknown(data[key], field.annotation, f"{prefix}{key}.")
    return dropped


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
