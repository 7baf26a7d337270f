"""The echo probe against transformers itself: top-1, p(echo), rank, BOS fed or not, completions, memory."""

from __future__ import annotations

import contextlib
import copy
import math
import weakref

import pytest
import torch
from tiny_models import ARCHITECTURES
from transformers import AutoModelForCausalLM, AutoTokenizer

import layerscope
from layerscope import ModelSpec
from layerscope.cli.declared import parse
from layerscope.errors import LayerscopeError
from layerscope.experiment import ConfigError
from layerscope.experiments.echo import EchoConfig, run_echo
from layerscope.experiments.echo_probe import length_batches
from layerscope.models import Model
from layerscope.tokensets import BUILTIN_SETS

# Words of one and of several tokens in the tiny tokenizer (' Michael' and ' firefighter' split there).
WORDS = ["John", "Michael", "red", "firefighter", "January", "run", "sad"]


@contextlib.contextmanager
def record_inputs(model: Model):
    """Every ``input_ids`` batch the embedding layer sees, as lists of ids."""
    seen: list[list[int]] = []

    def hook(module, args):
        seen.extend(args[0].tolist())

    handle = model.parts.embed.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def oracle(hf, tokenizer, word: str, bos: bool):
    """Unbatched, full-sequence logits straight from transformers: (argmax id, probs, echo target)."""
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    fed = ([tokenizer.bos_token_id] if bos else []) + ids
    with torch.no_grad():
        logits = hf(torch.tensor([fed])).logits[0, -1].float()
    return int(logits.argmax()), torch.softmax(logits, -1), ids[0]


def check_against_oracle(table, hf, tokenizer, top_k: int) -> None:
    for row in table.itertuples():
        top1, probs, target = oracle(hf, tokenizer, row.word, row.bos == "with")
        assert row.top1_id == top1, (row.word, row.bos)
        assert row.echo_id == target
        assert row.echo == (top1 == target)
        assert math.isclose(row.p_echo, float(probs[target]), abs_tol=1e-5)
        assert row.rank_echo == int((probs > probs[target]).sum()) + 1
        assert math.isclose(row.p_top1, float(probs.max()), abs_tol=1e-5)
        assert [getattr(row, f"p_top{k}") for k in range(2, top_k + 1)] == pytest.approx(
            probs.topk(top_k).values[1:].tolist(), abs=1e-5
        )


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_table_matches_transformers_argmax(arch, tiny_models, tiny_model_dirs):
    config = EchoConfig(tokens=tuple(WORDS), top_k=4, batch_size=3, max_new_tokens=0)
    result = run_echo(config, tiny_models[arch])
    table = result.table
    assert len(table) == 2 * len(WORDS) and set(table["bos"]) == {"with", "without"}
    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dirs[arch], dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs[arch])
    check_against_oracle(table, hf, tokenizer, top_k=4)


def test_bos_really_absent_or_present(tiny_models):
    model = tiny_models["gemma3"]
    bos = model.bos_token_id
    for setting in ("without", "with"):
        config = EchoConfig(tokens=tuple(WORDS), bos=setting, max_new_tokens=2, prompts=("John gave",))
        with record_inputs(model) as seen:
            result = run_echo(config, model)
        probe_inputs = seen[: len(WORDS)]  # the probe runs before the completions
        expected = [
            ([bos] if setting == "with" else []) + model.tokenizer(" " + w, add_special_tokens=False)["input_ids"]
            for w in WORDS
        ]
        assert sorted(probe_inputs) == sorted(expected)
        for fed in probe_inputs:
            assert fed.count(bos) == (1 if setting == "with" else 0)
            assert (fed[0] == bos) == (setting == "with")
        # the completion's first forward pass is the prompt itself, BOS first only when asked
        prompt_pass = seen[len(WORDS)]
        assert (prompt_pass[0] == bos) == (setting == "with") and prompt_pass.count(bos) == (setting == "with")
        assert list(result.table["input_ids"]) == [" ".join(map(str, e)) for e in expected]


def test_split_words_are_flagged_and_fed_whole(tiny_models):
    model = tiny_models["llama"]
    result = run_echo(EchoConfig(tokens=("Michael", "John"), bos="without", max_new_tokens=0), model)
    rows = result.table.set_index("word")
    michael = model.tokenizer(" Michael", add_special_tokens=False)["input_ids"]
    assert len(michael) > 1, "the tiny tokenizer should split ' Michael'"
    assert not rows.at["Michael", "single_token"] and rows.at["Michael", "n_tokens"] == len(michael)
    assert rows.at["Michael", "input_ids"] == " ".join(map(str, michael))
    assert rows.at["Michael", "echo_id"] == michael[0]
    assert rows.at["John", "single_token"]
    assert "\\*" in result.markdown()


def test_model_without_bos_reports_not_applicable(tiny_models):
    base = tiny_models["qwen3"]
    tokenizer = copy.deepcopy(base.tokenizer)
    tokenizer.bos_token = None
    model = Model(module=base.module, tokenizer=tokenizer, source="no-bos", fingerprint="x", name="no-bos")
    assert model.bos_token_id is None
    result = run_echo(EchoConfig(tokens=tuple(WORDS[:3]), max_new_tokens=2), model)
    with_rows = result.table[result.table["bos"] == "with"]
    assert len(with_rows) == 3 and not with_rows["applicable"].any() and with_rows["top1"].isna().all()
    assert result.table[result.table["bos"] == "without"]["applicable"].all()
    rates = result.rates.set_index("bos")
    assert math.isnan(rates.at["with", "echo_rate"]) and not rates.at["with", "applicable"]
    assert "n/a" in result.summary()[0]
    assert not result.completions.set_index("bos").at["with", "applicable"]
    assert "n/a" in result.markdown() and "n/a" in result.html()


@pytest.mark.parametrize("arch", ["gemma2", "qwen3", "gpt_oss"])
def test_completions_match_hf_generate(arch, tiny_models, tiny_model_dirs):
    model = tiny_models[arch]
    prompt = "When John and Mary went to the store, John gave the bag to"
    result = run_echo(EchoConfig(tokens=("red",), prompts=(prompt,), max_new_tokens=6), model)
    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dirs[arch], dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs[arch])
    for row in result.completions.itertuples():
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = ([tokenizer.bos_token_id] if row.bos == "with" else []) + ids
        generated = hf.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False, attention_mask=None)
        new = generated[0, len(ids) :].tolist()
        ours = [int(t) for t in row.token_ids.split()]
        assert row.prompt_ids == " ".join(map(str, ids))
        assert ours[: len(new)] == new  # generate may stop early at EOS
        assert len(new) == 6 or new[-1] in (tokenizer.eos_token_id, hf.generation_config.eos_token_id)


def test_models_are_loaded_one_at_a_time(tiny_model_dirs, monkeypatch):
    import layerscope.models.loading as loading

    alive: list[weakref.ref] = []
    real_load = loading.load_spec

    def load(spec):
        assert all(ref() is None for ref in alive), "the previous model is still in memory"
        model = real_load(spec)
        alive.append(weakref.ref(model.module))
        return model

    monkeypatch.setattr(loading, "load_spec", load)
    specs = tuple(ModelSpec(source=str(tiny_model_dirs[a])) for a in ("llama", "gemma2", "olmo3"))
    result = run_echo(EchoConfig(models=specs, tokens=("red",), max_new_tokens=1))
    assert len(alive) == 3 and not result.failures
    assert list(dict.fromkeys(result.table["model"])) == ["llama", "gemma2", "olmo3"]
    assert result.timings["load"] > 0


def test_unknown_model_is_a_failure_and_others_still_run(tiny_model_dirs):
    sources = [str(tiny_model_dirs["llama"]), "/no/such/model", "not a hub id!", str(tiny_model_dirs["gemma3"])]
    config = EchoConfig(models=tuple(ModelSpec(source=s) for s in sources), tokens=("red", "John"), max_new_tokens=1)
    result = run_echo(config)
    assert set(result.failures) == {"/no/such/model", "not a hub id!"}
    assert all(
        "\n" not in m and "/no/such/model" in result.failures["/no/such/model"] for m in result.failures.values()
    )
    assert list(dict.fromkeys(result.table["model"])) == ["llama", "gemma3"]
    assert result.record()["failures"] == result.failures


def test_python_api(tiny_models, tmp_path):
    result = layerscope.echo(models=[tiny_models["olmo3"], tiny_models["olmo3"]], tokens="red,John", out=tmp_path)
    assert list(dict.fromkeys(result.table["model"])) == ["olmo3", "olmo3 (2)"]
    assert [m["display_name"] for m in result.models] == ["olmo3", "olmo3 (2)"]
    assert {p.name for p in tmp_path.iterdir()} >= {
        "echo.csv",
        "echo.md",
        "echo.html",
        "echo.plotly.json",
        "echo.png",
        "run.json",
        "completions.csv",
        "rates.csv",
    }
    assert len(result.figure().data) == 2
    assert "olmo3 (2): echo" in repr(result) and "<b>EchoResult" in result._repr_html_()
    with pytest.raises(LayerscopeError, match="no model could be probed"):
        layerscope.echo(models="/no/such/model", tokens="red")


def test_python_api_takes_specs_and_sources(tiny_model_dirs, tiny_models):
    source = str(tiny_model_dirs["gemma3"])
    result = layerscope.echo(
        sets=(), models=[ModelSpec(source=source, name="mine"), tiny_models["llama"]], tokens=["red"], max_new_tokens=0
    )
    assert list(dict.fromkeys(result.table["model"])) == ["mine", "llama"]
    assert result.config.models == (
        ModelSpec(source=source, name="mine"),
        ModelSpec(source=tiny_models["llama"].source),
    )


def test_default_set_is_the_seed_words():
    assert BUILTIN_SETS["echo-words"][:3] == ["John", "Michael", "Mary"] and len(BUILTIN_SETS["echo-words"]) == 18
    config = EchoConfig()
    assert config.word_sets() == {"echo-words": BUILTIN_SETS["echo-words"]} and config.leading_space
    assert config.models == (ModelSpec(),) and config.command() == ["layerscope", "echo"]


def _reparsed(config: EchoConfig) -> EchoConfig:
    return parse(config.command())


@pytest.mark.parametrize(
    "config",
    [
        EchoConfig(),
        EchoConfig(models=(ModelSpec(source="a/b"), ModelSpec(), ModelSpec(source="c")), sets=("categories", "months")),
        EchoConfig(models=(ModelSpec(source="x", dtype="bfloat16", trust_remote_code=True),), tokens=("red", "John")),
        EchoConfig(
            bos="with", top_k=3, prompts=("one", "two words"), max_new_tokens=0, leading_space=False, batch_size=7
        ),
    ],
)
def test_command_reparses_to_the_same_config(config):
    assert _reparsed(config) == config


def test_bad_values_name_the_parameter_or_the_flag():
    for config, param, flag in [
        (EchoConfig(top_k=0), "top_k=0", "--top-k 0"),
        (EchoConfig(bos="sometimes"), "bos='sometimes'", "--bos sometimes"),
        (EchoConfig(max_new_tokens=-1), "max_new_tokens=-1", "--max-new-tokens -1"),
        (EchoConfig(prompts=(" ",)), "prompts=' '", "--prompt ' '"),
    ]:
        with pytest.raises(ConfigError) as caught:
            config.validate()
        assert str(caught.value).startswith(param) and caught.value.cli_message().startswith(flag)
    with pytest.raises(ConfigError, match="^models="):
        EchoConfig(models=()).validate()


def test_length_batches_groups_equal_lengths():
    seqs = [[1], [1, 2], [3], [4], [5, 6], [7]]
    batches = length_batches(seqs, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len({len(seqs[i]) for i in b}) == 1 and len(b) <= 2 for b in batches)
    with pytest.raises(LayerscopeError):
        length_batches([[1], []], batch_size=2)


@pytest.mark.default_model
def test_default_model_matches_transformers(default_model):
    words = BUILTIN_SETS["echo-words"]
    with record_inputs(default_model) as seen:
        result = run_echo(EchoConfig(max_new_tokens=0), default_model)
    bos = default_model.bos_token_id
    assert sorted(seen) == sorted(
        ([bos] if with_bos else []) + default_model.tokenizer(" " + w, add_special_tokens=False)["input_ids"]
        for with_bos in (False, True)
        for w in words
    )
    table = result.table
    assert len(table) == 2 * len(words) and table["single_token"].all()
    for setting in ("without", "with"):
        # every echo word is one token here, so the oracle is one plain full-logits forward per setting
        fed = [
            ([bos] if setting == "with" else [])
            + default_model.tokenizer(" " + w, add_special_tokens=False)["input_ids"]
            for w in words
        ]
        with torch.no_grad():
            argmax = default_model.module(torch.tensor(fed)).logits[:, -1].argmax(-1).tolist()
        rows = table[table["bos"] == setting]
        assert list(rows["word"]) == words and list(rows["top1_id"]) == argmax
        assert list(rows["top1"]) == [default_model.tokenizer.decode([i]) for i in argmax]


def test_a_tied_target_has_rank_1_only_when_it_is_the_top_token(tiny_models, monkeypatch):
    """bfloat16 logits tie often: rank and top-1 follow one order (probability, then token id), so rank 1 is
    exactly echo (issue 27: 'doctor' had rank 1 but echo False)."""
    import torch

    from layerscope.experiments import echo_probe

    model = tiny_models["llama"]
    vocab = int(model.unembedding_matrix.shape[0])
    logits = torch.full((2, vocab), -5.0)
    logits[:, 7] = logits[:, 9] = 3.0  # tokens 7 and 9 tie for the top

    monkeypatch.setattr(echo_probe, "last_position_logits", lambda m, ids: logits[: ids.shape[0]])
    later, earlier = echo_probe.next_token_stats(model, [[5], [5]], targets=[9, 7], top_k=3)
    assert later.top_ids[:2] == (7, 9) and later.rank_target == 2  # tied, but after token 7: no echo
    assert earlier.top_ids[0] == 7 and earlier.rank_target == 1
    for stat in (later, earlier):
        assert (stat.rank_target == 1) == (stat.top_ids[0] == stat.target_id)
