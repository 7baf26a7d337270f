"""Answer scoring against Hugging Face's own greedy ``generate``, and the answer probabilities against a plain
forward: on the tiny architectures (whole, with blocks removed, with a block's attention or MLP zeroed) and
once on the default model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from ablation_oracle import model_without, part_zeroed
from hf_oracles import hf_greedy

from layerscope.capture.ablation import EncodedTask, LayerAblation, encode_task

PROMPTS = ["5+2=", "The word is", "Monday", "a b c a b", "12*3=", "The capital of France is"]
N_NEW = 3


def generated(model, removed, prompt_ids: list[list[int]], n: int) -> list[list[int]]:
    """``generate(do_sample=False)`` of the model, or of a copy without the removed blocks (without a KV cache:
    the copy's layers keep their original cache indices)."""
    if not removed:
        return [hf_greedy(model, ids, n) for ids in prompt_ids]
    module = model_without(model.module, model.parts.layers_path, removed)
    return [hf_greedy(model, ids, n, module=module, use_cache=False) for ids in prompt_ids]


@torch.inference_mode()
def teacher_forced(model, prompt: list[int], answer: list[int]) -> list[float]:
    """Softmax probability of each answer token after the prompt and the answer's earlier tokens (float64)."""
    logits = model.module(input_ids=torch.tensor([prompt + answer]), use_cache=False).logits[0].double()
    probs = torch.softmax(logits[len(prompt) - 1 : len(prompt) + len(answer) - 1], dim=-1)
    return [float(probs[j, t]) for j, t in enumerate(answer)]


def answers_from(greedy: list[list[int]]) -> list[list[int]]:
    """Per prompt: the greedy continuation itself (right), one wrong in its middle, or one wrong at once."""
    out = []
    for k, ids in enumerate(greedy):
        if k % 3 == 0:
            out.append(list(ids))
        elif k % 3 == 1:
            out.append([ids[0], (ids[1] + 1) % 50, ids[2]])
        else:
            out.append([(ids[0] + 7) % 50, *ids[1:]])
    return out


def check_items(got, oracle, encoded: EncodedTask, greedy_ids, label) -> None:
    """Every item of an ablation run ``got`` against ``generate``'s tokens ``greedy_ids`` and a teacher-forced
    forward of ``oracle`` (anything with the ablated ``module``): verdict, prediction and probabilities."""
    for i, (answer, greedy) in enumerate(zip(encoded.answer_ids, greedy_ids)):
        greedy = greedy[: len(answer)]
        assert got.correct[i] == (greedy == answer), (label, i)
        # The prediction is what generate gave, up to and including the first token that differs from the answer.
        wrong = next((j for j, (g, a) in enumerate(zip(greedy, answer)) if g != a), None)
        assert got.tokens[i] == (greedy if wrong is None else greedy[: wrong + 1]), (label, i)
        probs = teacher_forced(oracle, encoded.prompt_ids[i], answer)
        assert got.p_first[i] == pytest.approx(probs[0], rel=1e-4, abs=1e-7)
        assert got.p_answer[i] == pytest.approx(
            float(torch.tensor(probs, dtype=torch.float64).prod()), rel=1e-4, abs=1e-9
        )


def check(model, encoded: EncodedTask, removed, greedy_ids):
    engine = LayerAblation(model, encoded, scoring="answer", batch_size=4, needed=[removed])
    got = engine.run(removed)
    oracle = model_without(model.module, model.parts.layers_path, removed) if removed else model.module
    check_items(got, SimpleNamespace(module=oracle), encoded, greedy_ids, removed)


@pytest.mark.parametrize("removed", [(), (1,)])
def test_answer_scoring_equals_generate(tiny, removed):
    prompt_ids = [tiny.encode(p) for p in PROMPTS]
    greedy = generated(tiny, removed, prompt_ids, N_NEW)
    # Answers of the unablated model: some are right for it, and the ablated model is judged against them too.
    base = greedy if not removed else generated(tiny, (), prompt_ids, N_NEW)
    answers = answers_from(base)
    answers.append(list(base[0][:1]))  # a one-token answer
    encoded = EncodedTask([*prompt_ids, prompt_ids[0]], answers)
    check(tiny, encoded, removed, [*greedy, greedy[0]])
    assert any(LayerAblation(tiny, encoded, scoring="answer", needed=[()]).run(()).correct) or removed


@pytest.mark.parametrize("part", ["attn", "mlp"])
def test_answer_scoring_with_a_part_removed_equals_generate(tiny, part):
    """Blocks 1 and 2 with their attention (or MLP) zeroed: verdicts, predictions and probabilities equal
    ``generate`` and a teacher-forced forward of the model with that sub-module patched to return zeros."""
    removed = (1, 2)
    prompt_ids = [tiny.encode(p) for p in PROMPTS]
    base = [hf_greedy(tiny, ids, N_NEW, use_cache=False) for ids in prompt_ids]
    with part_zeroed(tiny, part, removed):
        greedy = [hf_greedy(tiny, ids, N_NEW, use_cache=False) for ids in prompt_ids]
    answers = [*answers_from(base), list(greedy[0]), list(greedy[1][:1])]  # the last two right without the part
    encoded = EncodedTask([*prompt_ids, prompt_ids[0], prompt_ids[1]], answers)
    greedy = [*greedy, greedy[0], greedy[1]]
    engine = LayerAblation(tiny, encoded, scoring="answer", batch_size=4, needed=[(), removed])
    unablated = engine.run(())
    got = engine.run(removed, part=part)
    assert got.part == part and got.removed == removed
    assert got.correct[-2:] == [True, True]
    with part_zeroed(tiny, part, removed):
        check_items(got, tiny, encoded, greedy, part)
    assert got.p_answer != pytest.approx(unablated.p_answer, rel=1e-3)  # the part's removal changed something


def test_first_scoring_gives_the_first_token_probability(tiny):
    encoded = encode_task(tiny, PROMPTS, ["7", " red", " Tuesday", " c", "36", " Paris"])
    first = LayerAblation(tiny, encoded, scoring="first", batch_size=4).run(())
    whole = LayerAblation(tiny, encoded, scoring="answer", batch_size=4).run(())
    assert first.p_answer is None
    assert first.p_first == pytest.approx(whole.p_first, rel=1e-4, abs=1e-7)
    # One item sharing its prompt with another but not its answer gets its own probability.
    twice = encode_task(tiny, ["5+2=", "5+2="], ["7", "8"])
    got = LayerAblation(tiny, twice, scoring="first").run(())
    assert got.p_first == pytest.approx(
        [teacher_forced(tiny, twice.prompt_ids[0], a)[0] for a in twice.answer_ids], rel=1e-4
    )


@pytest.mark.default_model
def test_answer_scoring_equals_generate_on_default_model(default_model):
    from layerscope.tasks.registry import builtin_task

    task = builtin_task("capitals").task(n=8)
    prompts = [i.prompt for i in task.items]
    encoded = encode_task(default_model, prompts, [i.answer for i in task.items])
    greedy = [hf_greedy(default_model, ids, len(a)) for ids, a in zip(encoded.prompt_ids, encoded.answer_ids)]
    check(default_model, encoded, (), greedy)
    assert sum(g == a for g, a in zip(greedy, encoded.answer_ids)) >= 5  # the capitals baseline is high
