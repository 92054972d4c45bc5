"""Every trainable parameter of a real architecture is in exactly one row of the run file (or
listed as excluded): recurrent cells, attention's in-projection, norm layers by what they are,
raw and tied parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from bpmon.torch import watch  # noqa: E402
from bpmon.torch.layers import find_layers  # noqa: E402
from tests.torch_zoo import GPT, ZOO, LSTMModel, batch_for, loss_of  # noqa: E402


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _trainable(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)  # tied: counted once


@pytest.mark.parametrize("name", sorted(ZOO))
def test_the_rows_hold_every_trainable_parameter_once(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    model = ZOO[name]()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = batch_for(name)
    with watch(model, tmp_path / "z.jsonl", every=1) as mon:
        loss = loss_of(model, x, y)
        loss.backward()
        opt.step()
        mon.log(loss=loss)
    head, snap = _lines(tmp_path / "z.jsonl")[:2]
    assert sum(r["params"] for r in head["layers"]) == _trainable(model)
    assert head["excluded"] == []
    assert [r["params"] for r in snap["layers"]] == [r["params"] for r in head["layers"]]
    # Every row measured: a gradient norm and an update ratio for each (none left out as 0).
    for row in snap["layers"]:
        assert row["grad_norm"] is not None and row["grad_norm"] > 0, row["name"]
        assert row["update_ratio"] is not None and row["update_ratio"] > 0, row["name"]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_excluded_parameters_are_listed_and_the_rest_add_up(tmp_path: Path, name: str) -> None:
    model = ZOO[name]()
    every_row = [row.name for row in find_layers(model).layers]
    with watch(model, tmp_path / "x.jsonl", exclude=every_row[::2]) as mon:
        assert mon.layer_names == tuple(every_row[1::2])
    head = _lines(tmp_path / "x.jsonl")[0]
    sizes = dict(model.named_parameters())
    excluded = sum(sizes[n].numel() for n in head["excluded"] if n in sizes)
    assert all(n in dict(model.named_parameters(remove_duplicate=False)) for n in head["excluded"])
    assert sum(r["params"] for r in head["layers"]) + excluded == _trainable(model)


def test_a_recurrent_layer_is_one_row_per_layer_and_direction(tmp_path: Path) -> None:
    with watch(LSTMModel(torch.nn.GRU, bidirectional=True), tmp_path / "r.jsonl") as mon:
        names = mon.layer_names
    assert names == ("encoder", "rnn.l0", "rnn.l0_reverse", "rnn.l1", "rnn.l1_reverse", "decoder")
    rows = {r["name"]: r for r in _lines(tmp_path / "r.jsonl")[0]["layers"]}
    # Layer 1 reads both directions of layer 0: input 2 x 12; weights ih, hh and two biases.
    assert (rows["rnn.l1"]["fan_in"], rows["rnn.l1"]["fan_out"]) == (24, 12)
    assert rows["rnn.l1"]["params"] == 3 * 12 * 24 + 3 * 12 * 12 + 2 * 3 * 12


def test_attention_keeps_its_in_projection(tmp_path: Path) -> None:
    with watch(ZOO["transformer"](), tmp_path / "a.jsonl") as mon:
        names = mon.layer_names
    assert "encoder.layers.0.self_attn.in_proj" in names
    assert "encoder.layers.0.self_attn.out_proj" in names


def test_tied_weights_are_one_row_named_by_both_at_the_head(tmp_path: Path) -> None:
    model = GPT()
    with watch(model, tmp_path / "g.jsonl") as mon:
        names = mon.layer_names
    head = _lines(tmp_path / "g.jsonl")[0]
    last = head["layers"][-1]
    # The head is the last row: the output layer the rules compare the others with.
    assert names[-1] == "transformer.wte=lm_head"
    assert last["tied"] == ["transformer.wte", "lm_head"] and last["kind"] == "Linear"
    assert names.count("transformer.wte") == 0 and "lm_head" not in names
    # nanoGPT's own LayerNorm is a norm layer: a row of its own, and "+bn" in the switches.
    assert "transformer.h.0.ln_1" in names and "+bn" in head["switches"]
    ln = next(r for r in head["layers"] if r["name"] == "transformer.h.0.ln_1")
    assert ln["kind"] == "LayerNorm" and ln["params"] == 32


class EmbeddingLast(torch.nn.Module):
    """Registered as pytorch/examples' word_language_model TransformerModel registers its
    layers: the encoder, the output layer, then the input embedding."""

    def __init__(self, tied: bool = False) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.decoder = torch.nn.Linear(16, 20)
        self.input_emb = torch.nn.Embedding(20, 16)
        self.pos_emb = torch.nn.Embedding(8, 16)
        if tied:
            self.decoder.weight = self.input_emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.input_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
        return self.decoder(self.encoder(h))  # type: ignore[no-any-return]


def test_embeddings_registered_last_come_first_and_the_output_layer_stays_last(
    tmp_path: Path,
) -> None:
    """Under the panel's "input layer first", and for the rules, which compare every row with
    the last one (the output layer): embeddings registered after every other row lead."""
    with watch(EmbeddingLast(), tmp_path / "e.jsonl") as mon:
        names = mon.layer_names
    assert names[:2] == ("input_emb", "pos_emb")
    assert names[-1] == "decoder"
    assert len(names) == len(set(names))
    # Tied to the output layer, the embedding is the head's row and stays where the head is.
    with watch(EmbeddingLast(tied=True), tmp_path / "t.jsonl") as mon:
        names = mon.layer_names
    assert names[0] == "pos_emb" and names[-1] == "decoder=input_emb"
    # Nothing but embeddings: registration order.
    model = torch.nn.ModuleDict({"a": torch.nn.Embedding(4, 3), "b": torch.nn.Embedding(4, 3)})
    assert [row.name for row in find_layers(model).layers] == ["a", "b"]
