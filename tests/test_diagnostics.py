"""Forgetting diagnostics: every measurement on a case whose answer is known, and the piece in a run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lifelong.cli import app
from lifelong.config import DiagnosticsConfig, load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.diagnostics import attribution, collapse, drift, gradient_conflict, rotation, sharpness
from lifelong.diagnostics.groups import EMBEDDINGS, LayerGroups, canonical_name, snapshot_weights, span_names
from lifelong.experiment import Experiment
from lifelong.models import tiny_model
from lifelong.training import Example

TEXTS = ["The zorb of Plinth is blue and very old.", "Quarn ships sail at dawn from the harbour.",
         "Question: What is the capital of France?\nAnswer: Paris"]


@pytest.fixture(scope="module")
def tok():
    from lifelong.models import load_tokenizer

    return load_tokenizer("tiny")


def features(n=200, width=16, seed=0):
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def random_rotation(width, seed=1):
    q, _ = torch.linalg.qr(torch.randn(width, width, generator=torch.Generator().manual_seed(seed)))
    return q


# ---- layer groups ------------------------------------------------------------------------------


def test_layer_groups_split_blocks_and_name_peft_parameters():
    assert [(name, list(span)) for name, span in span_names(7, 3)] == [
        ("lower", [0, 1, 2]), ("middle", [3, 4]), ("upper", [5, 6])]
    groups = LayerGroups(6, 3)
    assert groups.names == [EMBEDDINGS, "lower", "middle", "upper"]
    assert groups.of_param("model.embed_tokens.weight") == EMBEDDINGS
    assert groups.of_param("model.layers.1.mlp.up_proj.weight") == "lower"
    assert groups.of_param("base_model.model.model.layers.3.self_attn.q_proj.base_layer.weight") == "middle"
    assert groups.of_param("model.norm.weight") == "upper"  # the final norm sits at the top
    assert canonical_name("base_model.model.model.layers.3.self_attn.q_proj.base_layer.weight") == \
        "model.layers.3.self_attn.q_proj.weight"


# ---- 1. gradient conflict ------------------------------------------------------------------------


def test_cosine_of_identical_gradients_is_one_and_of_negated_is_minus_one():
    g = {"model.embed_tokens.weight": torch.randn(5, 3), "model.layers.0.mlp.weight": torch.randn(4),
         "model.layers.1.mlp.weight": torch.randn(4)}
    groups = LayerGroups(2, 2)
    same = gradient_conflict.grouped_cosines(g, g, groups.of_param)
    assert set(same) == {EMBEDDINGS, "lower", "upper", "all"}
    assert all(v == pytest.approx(1.0) for v in same.values())
    negated = gradient_conflict.grouped_cosines(g, {k: -v for k, v in g.items()}, groups.of_param)
    assert all(v == pytest.approx(-1.0) for v in negated.values())
    orthogonal = gradient_conflict.grouped_cosines({"a": torch.tensor([1.0, 0.0])}, {"a": torch.tensor([0.0, 2.0])},
                                                   lambda name: "g")
    assert orthogonal == {"g": pytest.approx(0.0), "all": pytest.approx(0.0)}
    assert gradient_conflict.grouped_cosines({"a": torch.zeros(2)}, {"a": torch.ones(2)}, lambda n: "g")["g"] is None


def test_gradients_of_the_same_examples_agree_and_leave_no_grad_behind(tok):
    model = tiny_model(tok, seed=0)
    examples = [Example(text=t) for t in TEXTS]
    groups = LayerGroups.of(model, 2)
    out = gradient_conflict.conflicts(model, tok, examples, {"same": list(examples), "other": [Example("x y z")]},
                                      groups.of_param)
    assert out["same"]["all"] == pytest.approx(1.0, abs=1e-6)
    assert -1.0 <= out["other"]["all"] < 0.99
    assert all(p.grad is None for p in model.parameters())


# ---- 2. drift and CKA ------------------------------------------------------------------------------


def test_cka_is_one_for_identical_rotated_and_scaled_features_and_low_for_unrelated():
    x = features()
    assert drift.linear_cka(x, x) == pytest.approx(1.0)
    assert drift.linear_cka(x, 3.0 * x @ random_rotation(16)) == pytest.approx(1.0)
    assert drift.linear_cka(x, features(seed=5)) < 0.2
    assert drift.linear_cka(x[:8], x[:8]) == pytest.approx(1.0)  # fewer rows than columns (the Gram form)
    assert drift.relative_drift(x, x) == 0.0
    assert drift.relative_drift(x, 2 * x) == pytest.approx(1.0)


def test_one_outlier_channel_sinks_linear_cka_but_not_the_robust_one():
    x = features(n=300, width=16)
    y = x.clone()
    y[:, 3] = 40.0 * torch.randn(300, generator=torch.Generator().manual_seed(4))  # one channel blows up
    assert drift.linear_cka(x, y) < 0.2
    assert drift.robust_cka(x, y) == pytest.approx(1.0)
    channels, shares = drift.top_channels(y)
    assert channels == [3] and shares[0] > 0.9


def test_identical_models_give_cka_one_and_zero_drift(tok):
    model, copy = tiny_model(tok, seed=0), tiny_model(tok, seed=0)
    before = drift.probe_features(model, tok, TEXTS)
    after = drift.probe_features(copy, tok, TEXTS)
    assert len(before.hidden) == 3 and len(before.attention) == 2  # embeddings + 2 blocks; 2 attention modules
    summary = drift.drift_summary(before, after, lower=[0], upper=[1])
    assert summary["cka"] == pytest.approx([1.0] * 3) and summary["cka_robust"] == pytest.approx([1.0] * 3)
    assert summary["top_channel_share_before"] == summary["top_channel_share_after"]
    assert summary["hidden_drift"] == [0.0] * 3 and summary["attention_drift"] == [0.0] * 2
    assert summary["attention_drift_lower"] == 0.0 and summary["attention_drift_upper"] == 0.0
    n_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) - 1 for t in TEXTS)  # first tokens dropped
    assert summary["tokens"] == n_tokens


def test_changing_an_upper_layer_moves_only_the_upper_attention_output(tok):
    model, changed = tiny_model(tok, seed=0), tiny_model(tok, seed=0)
    with torch.no_grad():
        changed.model.layers[1].self_attn.o_proj.weight.mul_(2.0)
    summary = drift.drift_summary(drift.probe_features(model, tok, TEXTS), drift.probe_features(changed, tok, TEXTS),
                                  lower=[0], upper=[1])
    assert summary["attention_drift_lower"] == 0.0
    assert summary["attention_drift_upper"] == pytest.approx(1.0, rel=1e-4)  # doubled output: drift ||x|| / ||x||
    assert summary["cka"][1] == pytest.approx(1.0) and summary["cka"][2] < 1.0


# ---- 3. sharpness ------------------------------------------------------------------------------------


def test_sharpness_is_zero_at_radius_zero_and_grows_with_the_radius():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 3.0]]))
    x = torch.randn(32, 4)
    y = model(x).detach()  # the weights are the exact minimum: every direction goes up

    def loss() -> float:
        with torch.no_grad():
            return float(((model(x) - y) ** 2).mean())

    def grad() -> None:
        ((model(x) - y - 0.1) ** 2).mean().backward()  # a non-zero gradient direction

    before = model.weight.detach().clone()
    out = sharpness.sharpness(model, loss, radii=[0.0, 0.01, 0.05, 0.2], samples=3, gradient_fn=grad,
                              gradient_radii=[0.0, 0.01, 0.05, 0.2])
    assert out["loss"] == pytest.approx(0.0, abs=1e-12)
    assert out["random"]["0.0"] == 0.0 and out["gradient"]["0.0"] == 0.0
    rises = [out["random"][k] for k in ("0.01", "0.05", "0.2")]
    assert 0 < rises[0] < rises[1] < rises[2]
    assert rises[2] / rises[1] == pytest.approx(16.0, rel=1e-3)  # a quadratic bowl: rise ~ rho^2
    assert 0 < out["gradient"]["0.01"] < out["gradient"]["0.05"] < out["gradient"]["0.2"]
    assert torch.equal(model.weight, before) and model.weight.grad is None


# ---- 4. rotation -----------------------------------------------------------------------------------


def test_procrustes_recovers_a_rotated_copy_of_the_features():
    x = features(n=400, width=16)
    q = random_rotation(16)
    assert torch.allclose(rotation.orthogonal_procrustes(x - x.mean(0), (x - x.mean(0)) @ q), q.double(), atol=1e-6)
    fit = rotation.rotation_fit(x, x @ q)
    assert fit["residual"] == pytest.approx(0.0, abs=1e-10) and fit["heldout_residual"] == pytest.approx(0.0, abs=1e-10)
    assert fit["explained"] == pytest.approx(1.0) and fit["heldout_explained"] == pytest.approx(1.0)
    assert fit["drift"] > 0.1


def test_procrustes_explains_little_of_unrelated_drift_and_skips_heldout_when_tokens_are_few():
    x, y = features(n=400), features(n=400, seed=9)
    fit = rotation.rotation_fit(x, y)
    assert fit["explained"] < 0.5 and fit["heldout_explained"] < 0.2
    q = random_rotation(16)
    half = rotation.rotation_fit(x, 0.5 * (x + x @ q) + 0.0)  # half rotated, half not: some of it
    assert 0 < half["explained"] < 1
    assert rotation.rotation_fit(x[:20], x[:20] @ q)["heldout_explained"] is None  # 10 fitting tokens < width 16
    summary = rotation.rotation_summary([x, x], [x @ q, y])
    assert summary["explained"][0] == pytest.approx(1.0) and summary["explained_total"] < 1.0


# ---- 5. collapse -------------------------------------------------------------------------------------


def test_distinct_n_and_entropy_on_known_strings():
    assert collapse.distinct_n(["a a a a"], 1) == 0.25
    assert collapse.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b), (b a), (a b)
    assert collapse.distinct_n(["the cat sat", "the dog ran"], 1) == pytest.approx(5 / 6)
    assert collapse.distinct_n(["one"], 2) is None
    assert collapse.word_entropy(["a a a a"]) == 0.0
    assert collapse.word_entropy(["a b c d"]) == pytest.approx(2.0)
    assert collapse.word_entropy([""]) is None
    uniform = torch.zeros(2, 8)
    assert collapse.predictive_entropy(uniform).tolist() == pytest.approx([math.log(8)] * 2)
    peaked = torch.tensor([[100.0, 0.0, 0.0]])
    assert collapse.predictive_entropy(peaked).item() == pytest.approx(0.0, abs=1e-6)


def test_free_generation_is_deterministic_and_measured(tok):
    model = tiny_model(tok, seed=0)
    first = collapse.measure_collapse(model, tok, ["Once upon a time", "The weather"], max_new_tokens=8)
    again = collapse.measure_collapse(model, tok, ["Once upon a time", "The weather"], max_new_tokens=8)
    assert first == again
    assert 0 < first["distinct_1"] <= 1 and first["predictive_entropy"] > 0 and len(first["examples"]) == 2


# ---- 6. layer attribution ----------------------------------------------------------------------------


def test_restoring_the_only_changed_group_returns_the_full_score(tok):
    model = tiny_model(tok, seed=0)
    groups = LayerGroups.of(model, 2)  # embeddings, lower (block 0), upper (block 1 + final norm)
    pre = snapshot_weights(model)
    reference = model.model.layers[1].mlp.down_proj.weight.detach().clone()
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight.add_(1.0)  # the round changed only the upper group

    def score(_source: str) -> float:  # 1.0 while the upper weights are the pre-round ones, else 0.2
        return 1.0 if torch.equal(model.model.layers[1].mlp.down_proj.weight, reference) else 0.2

    changed = model.model.layers[1].mlp.down_proj.weight.detach().clone()
    out = attribution.attribute(model, pre, groups, score, before={"old": 1.0, "same": 0.5},
                                after={"old": 0.2, "same": 0.5})
    assert out["regressed"] == ["old"]
    assert out["returned"]["old"]["upper"] == pytest.approx(1.0)
    assert out["returned"]["old"]["lower"] == 0.0 and out["returned"]["old"][EMBEDDINGS] == 0.0
    assert torch.equal(model.model.layers[1].mlp.down_proj.weight, changed)  # the round's weights are back


# ---- the piece ---------------------------------------------------------------------------------------


def test_the_piece_logs_one_diagnostics_event_per_round(user_stream, tmp_path):
    small = {"probe_texts": 6, "grad_examples": 2, "score_items": 2, "generation_tokens": 4,
             "generation_prompts": ["Once upon a time"], "sharpness_samples": 1}
    config = load_config(overrides={"model": "tiny", "condition": "a", "pieces": ["full_finetune", "diagnostics"],
                                    "training": {"epochs": 1, "batch_size": 2}, "evaluation": {"progress": False},
                                    "diagnostics": small, "stream": str(user_stream), "out": str(tmp_path / "out")})
    Experiment(config).run()
    records = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    events = [r for r in records if r["event"] == "diagnostics"]
    assert [(e["domain"], e["round"], e["earlier"]) for e in events] == [
        ("a_colors", 1, []), ("b_ships", 2, ["a_colors"])]
    second = events[1]
    assert set(second["gradient_conflict"]) == {"a_colors", "canary"}
    assert set(second["scores"]) == {"a_colors", "canary"}
    for key in ("drift", "rotation", "sharpness", "collapse", "attribution"):
        assert key in second, key
    assert len(second["drift"]["cka"]) == 3 and second["drift"]["cka"][0] <= 1.0 + 1e-9
    assert set(second["collapse"]) == {"before", "after"}
    assert second["collapse"]["before"] == events[0]["collapse"]["after"]  # same weights: reused, not remeasured
    assert second["scores"]["canary"]["before"] == events[0]["scores"]["canary"]["after"]
    assert set(second["cost_s"]) >= {"gradient_conflict", "features", "drift", "rotation", "sharpness", "collapse",
                                     "attribution", "scores", "total"}
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Why it forgot" in page and 'data-kind="cka"' in page

    # the trained run against its starting model, from `lifelong eval`
    result = runner().invoke(app, ["eval", "--checkpoint", str(tmp_path / "out"), "--diagnose-against", "tiny",
                                   "--stream", str(user_stream), "--out", str(tmp_path / "eval"),
                                   *small_sets(small)])
    assert result.exit_code == 0, result.output
    diagnosis = json.loads((tmp_path / "eval" / "diagnostics.json").read_text())
    assert diagnosis["against"] == "tiny" and set(diagnosis["sharpness"]) == {"reference", "model"}
    assert diagnosis["drift"]["cka"][0] < 1.0  # the embeddings trained
    assert "gradient_conflict" not in diagnosis and "cka_mean\t" in result.output


def runner():
    from typer.testing import CliRunner

    return CliRunner()


def small_sets(options: dict) -> list[str]:
    return [arg for key, value in options.items() for arg in ("--set", f"diagnostics.{key}={json.dumps(value)}")]


def test_eval_of_a_model_against_itself_finds_no_drift(user_stream, tmp_path):
    result = runner().invoke(app, ["eval", "--model", "tiny", "--diagnose-against", "tiny",
                                   "--stream", str(user_stream), "--out", str(tmp_path),
                                   "--set", "evaluation.progress=false",
                                   *small_sets({"probe_texts": 6, "generation_tokens": 4, "sharpness_samples": 1,
                                                "measurements": ["drift", "rotation", "collapse", "attribution"]})])
    assert result.exit_code == 0, result.output
    diagnosis = json.loads((tmp_path / "diagnostics.json").read_text())
    assert diagnosis["drift"]["cka"] == pytest.approx([1.0] * 3)
    assert diagnosis["drift"]["attention_drift_lower"] == 0.0
    assert diagnosis["rotation"]["explained_total"] == pytest.approx(1.0)  # nothing moved: nothing to explain
    assert diagnosis["collapse"]["before"] == diagnosis["collapse"]["after"]
    assert diagnosis["attribution"]["regressed"] == []


def test_the_piece_before_lora_measures_the_trained_adapter(user_stream, tmp_path):
    small = {"probe_texts": 4, "grad_examples": 2, "score_items": 2, "sharpness_samples": 1,
             "measurements": ["sharpness", "attribution", "drift"]}
    config = load_config(overrides={"model": "tiny", "condition": "b", "pieces": ["diagnostics", "lora"],
                                    "training": {"epochs": 1, "batch_size": 2, "lr": 1e-2},
                                    "evaluation": {"progress": False}, "diagnostics": small,
                                    "stream": str(user_stream), "out": str(tmp_path / "out")})
    Experiment(config).run()
    records = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    events = [r for r in records if r["event"] == "diagnostics"]
    assert len(events) == 2
    for event in events:
        assert max(event["sharpness"]["gradient"].values()) > 0  # the adapter's weights act
        assert event["drift"]["cka"][0] == pytest.approx(1.0)  # LoRA leaves the embeddings alone
        assert min(event["drift"]["cka"]) < 1.0


def test_diagnostics_config_is_validated():
    assert DiagnosticsConfig().measurements == list(DiagnosticsConfig().measurements)
    from lifelong.errors import ConfigError

    with pytest.raises(ConfigError, match="diagnostics.measurements"):
        load_config(overrides={"diagnostics": {"measurements": ["telepathy"]}})
    with pytest.raises(ConfigError, match="sharpness_radii"):
        load_config(overrides={"diagnostics": {"sharpness_radii": [-1.0]}})


def test_only_selected_measurements_run(tok):
    from lifelong.config import EvaluationConfig, PromptConfig
    from lifelong.diagnostics.suite import Diagnoser, Sources
    from lifelong.evaluation.evaluator import Evaluator

    model = tiny_model(tok, seed=0)
    options = DiagnosticsConfig(measurements=["drift"], probe_texts=3)
    diagnoser = Diagnoser(options, tok, Evaluator(EvaluationConfig(progress=False), tok), PromptConfig())
    diagnoser.texts = TEXTS
    domain = Domain("d", documents=[Document("The zorb is blue.")], items=[QAItem("Zorb color?", "blue")])
    sources = Sources(new=domain, earlier=[], canary=domain)
    event = diagnoser.after(model, diagnoser.before(model, sources), sources)
    assert set(event) == {"groups", "drift", "cost_s"}
    assert event["drift"]["cka"] == pytest.approx([1.0] * 3)


# ---- the report's "why" section ------------------------------------------------------------------------

RESULTS = {"model": "tiny", "condition": "a", "domains": ["med", "law", "code"],
           "accuracy_matrix": [[0.1, 0.1, 0.1], [0.6, 0.1, 0.1], [0.4, 0.7, 0.1], [0.3, 0.5, 0.6]],
           "canary": [1.0, 0.8, 0.7, 0.7], "metrics": {}, "config": {}}


def diagnostics_event(number: int, domain: str, earlier: list[str], cosine: dict[str, float]) -> dict:
    sources = [*earlier, "canary"]
    return {
        "event": "diagnostics", "round": number, "domain": domain, "earlier": earlier,
        "groups": ["embeddings", "lower", "middle", "upper"],
        "scores": {s: {"before": 0.5, "after": 0.4, "drop": 0.1} for s in sources},
        "gradient_conflict": {s: {"cosine": {"embeddings": 0.1, "lower": cosine[s], "all": cosine[s]}, "drop": 0.1}
                              for s in sources},
        "drift": {"cka": [1.0, 0.99, 0.95 - 0.05 * number], "cka_mean": 0.97 - 0.02 * number, "cka_min": 0.9,
                  "attention_drift": [0.2, 0.1], "attention_drift_lower": 0.2, "attention_drift_upper": 0.1},
        "rotation": {"explained_total": 0.7, "heldout_explained_total": 0.4, "residual_mean": 0.01 * number},
        "sharpness": {"loss": 1.0, "random": {"0.001": 0.0, "0.005": 0.001}, "gradient": {"0.001": 0.1, "0.005": 0.5}},
        "collapse": {"before": {"distinct_2": 0.8, "predictive_entropy": 3.0},
                     "after": {"distinct_2": 0.7, "predictive_entropy": 2.5}},
        "attribution": {"regressed": sources, "returned": {s: {"lower": 0.5, "upper": 0.25} for s in sources}},
        "cost_s": {"drift": 1.0, "total": 10.0},
    }


LOG = [diagnostics_event(1, "med", [], {"canary": 0.2}),
       diagnostics_event(2, "law", ["med"], {"med": -0.3, "canary": 0.1}),
       diagnostics_event(3, "code", ["med", "law"], {"med": 0.0, "law": -0.2, "canary": 0.3})]


def test_pairs_join_each_round_with_the_forgetting_that_followed():
    from lifelong.diagnostics import analysis

    rows = analysis.pairs(RESULTS, LOG)
    assert [(r["round"], r["source"]) for r in rows] == [
        (1, "canary"), (2, "med"), (2, "canary"), (3, "med"), (3, "law"), (3, "canary")]
    forgetting = [r["forgetting"] for r in rows]
    assert forgetting == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.2, 0.0])
    assert rows[1]["gradient_cosine"] == -0.3 and rows[1]["returned"] == {"lower": 0.5, "upper": 0.25}
    assert rows[3]["cka_loss"] == pytest.approx(1 - 0.91)
    table = {c["measure"]: c for c in analysis.correlations(rows)}
    assert table["gradient_cosine"]["n"] == 6
    assert table["gradient_cosine"]["pearson"] < 0  # more negative cosine, more forgetting (built in above)
    assert analysis.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert analysis.pearson([1, 2], [1, 2]) is None  # too few points to say anything


def test_report_shows_the_why_section_only_with_diagnostics():
    from lifelong.report import render_run_report

    page = render_run_report(RESULTS, LOG)
    assert "Why it forgot" in page and "Which measurement tracks forgetting" in page
    assert "lower: 0.50, upper: 0.25" in page  # the attribution of a regression, beside it
    for kind in ("cka", "drift", "conflict"):
        assert f'data-kind="{kind}"' in page
    assert "Why it forgot" not in render_run_report(RESULTS, [])


@pytest.mark.browser
def test_why_section_draws_in_chromium(tmp_path):
    from lifelong.report import write_run_report

    from browser import render_in_chromium, require_chromium

    require_chromium()
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in LOG))
    found = render_in_chromium(write_run_report(tmp_path))
    assert found["js_errors"] == []
    why = [p for p in found["plots"] if p["kind"] in ("cka", "drift", "conflict")]
    assert len(why) == 3 and all(p["drawn"] and p["main_svg"] > 0 for p in why), why
