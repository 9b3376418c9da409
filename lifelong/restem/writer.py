"""The note writer that ReSTEM trains: a teacher model with its own LoRA adapter (SEAL's self-edits).

`writer(document, k, seed)` samples k note sets for a document (one text each, one note per line),
seeded, through the study-notes piece's `write_notes` and prompt (lifelong/generation.py's Generator,
so every note keeps which model and prompt wrote it); `writer.generator` is that Generator, for the
study-notes piece to write with the trained writer; `writer.train(pairs, seed)` fine-tunes its adapter
on (document, kept notes) pairs with the prompt masked out of the loss (supervised fine-tuning, the
M-step of ReST-EM). The base weights of
the writer never change, so the learner's own training does not move it and vice versa.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from accelerate import Accelerator
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

from lifelong.config import RestemConfig, SelfDirectedConfig, StudyNotesConfig, TrainingConfig
from lifelong.generation import Generator
from lifelong.selfdirected.notes import write_notes
from lifelong.training import Example, RoundStats, TrainingLoop


class NoteWriter:
    """Samples candidate note sets and learns from the kept ones (its own PEFT LoRA adapter)."""

    def __init__(self, model: torch.nn.Module, tokenizer, options: RestemConfig, prompt: str | None = None,
                 name: str = "writer", accelerator: Accelerator | None = None, log=lambda event: None):
        self.options = options
        self.tokenizer = tokenizer
        self.template = prompt or StudyNotesConfig().prompt
        lora = LoraConfig(r=options.writer_r, lora_alpha=options.writer_alpha, lora_dropout=0.0,
                          target_modules=options.target_modules, task_type="CAUSAL_LM")
        self.model = get_peft_model(model, lora)
        decoding = SelfDirectedConfig(temperature=options.temperature, top_p=options.top_p,
                                      max_new_tokens=options.max_new_tokens)
        self.generator = Generator(self.model, tokenizer, f"{name} (ReSTEM-trained writer)", decoding)
        accelerator = accelerator or Accelerator(cpu=str(self.model.device) == "cpu")
        training = TrainingConfig(lr=options.writer_lr, epochs=options.writer_epochs, batch_size=4,
                                  grad_accum=accelerator.gradient_accumulation_steps, max_length=512,
                                  fault_snapshot=False, train_questions=False)
        self.loop = TrainingLoop(training, accelerator, log=log, progress=False)

    def prompt(self, document: str) -> str:
        """The prompt as the writer sees it (the study-notes prompt in the chat template)."""
        return self.generator.chat(self.template.format(document=document))

    def __call__(self, document: str, k: int, seed: int) -> list[str]:
        """k note sets for `document`, sampled under `seed` (the same seed, the same notes)."""
        self.generator.seed = seed
        return [record.text for record in write_notes(self.generator, document, k, self.template)]

    def train(self, pairs: Sequence[tuple[str, str]], seed: int) -> RoundStats | None:
        """Supervised fine-tuning of the adapter on (document, notes) pairs; None when there is nothing to learn."""
        examples = [Example(prompt=self.prompt(document), text=notes.strip(), source="restem")
                    for document, notes in pairs if notes.strip()]
        if not examples:
            return None
        params = [p for p in self.model.parameters() if p.requires_grad]
        stats = self.loop.run(self.model, self.tokenizer, examples, [{"params": params, "lr": self.options.writer_lr}],
                              [], seed=seed, domain="restem writer")
        self.model.eval()
        return stats

    def state_dict(self) -> dict:
        return {name: t.detach().cpu().clone() for name, t in get_peft_model_state_dict(self.model).items()}

    def load_state_dict(self, state: dict) -> None:
        set_peft_model_state_dict(self.model, state)
