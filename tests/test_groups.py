"""Rows grouped by module path (bpmon.tui.groups): generated name sets, and the models the issue
names (a 12-block GPT, a ResNet, a plain Sequential, bpmon's own layers)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bpmon.tui.groups import Group, default_open, flatten, group_rows, groups_of, visible

PART = st.one_of(
    st.sampled_from(["h", "attn", "mlp", "c_fc", "layer1", "fc", "", "0", "1", "2", "12"]),
    st.from_regex(r"[a-z0-9_]{1,4}", fullmatch=True),
)
NAME = st.lists(PART, min_size=1, max_size=5).map(".".join)
NAMES = st.lists(NAME, max_size=40)


def gpt_names(blocks: int = 12) -> list[str]:
    names = ["transformer.wte", "transformer.wpe"]
    for i in range(blocks):
        names += [f"transformer.h.{i}.{x}" for x in ("attn.c_attn", "attn.c_proj", "mlp.c_fc")]
        names.append(f"transformer.h.{i}.mlp.c_proj")
    return [*names, "lm_head"]


def paths(nodes: list[Group]) -> list[str]:
    return [g.path for g in nodes]


@given(NAMES)
def test_every_row_once_in_order(names: list[str]) -> None:
    assert flatten(group_rows(names)) == list(range(len(names)))


@given(NAMES)
def test_groups_are_contiguous_unique_and_named_by_their_rows(names: list[str]) -> None:
    groups = groups_of(group_rows(names))
    assert len({g.path for g in groups}) == len(groups)
    for g in groups:
        assert len(g.rows) >= 2
        assert list(g.rows) == list(range(g.rows[0], g.rows[-1] + 1))
        assert all(names[i].startswith(g.path + ".") for i in g.rows)
        assert flatten(g.children) == list(g.rows)
        assert g.is_block or g.blocks >= 2


@given(st.lists(st.from_regex(r"[a-z_]{1,5}(\.[a-z_]{1,5}){0,3}", fullmatch=True), max_size=30))
def test_names_without_an_index_never_group(names: list[str]) -> None:
    assert group_rows(names) == tuple(range(len(names)))


@given(NAMES, st.integers(0, 60))
def test_the_default_fits_the_room_or_would_leave_it_half_empty(
    names: list[str], room: int
) -> None:
    nodes = group_rows(names)
    opened = default_open(nodes, room, {})
    shown = visible(nodes, opened)
    open_depths = [s.depth for s in shown if isinstance(s.node, Group) and s.open]
    if len(shown) > room and open_depths:
        # Only the deepest level opened went past the room, and without it less than half
        # the room would show.
        deepest = max(open_depths)
        closed = {
            **opened,
            **{
                s.node.path: False
                for s in shown
                if isinstance(s.node, Group) and s.depth == deepest
            },
        }
        assert 2 * len(visible(nodes, closed)) < room
    # Everything open when everything fits.
    if len(names) <= room:
        assert all(opened.values())


@given(NAMES, st.data())
def test_a_choice_is_kept_whatever_the_room(names: list[str], data: st.DataObject) -> None:
    nodes = group_rows(names)
    groups = groups_of(nodes)
    chosen = {g.path: data.draw(st.booleans()) for g in groups if data.draw(st.booleans())}
    opened = default_open(nodes, data.draw(st.integers(0, 50)), chosen)
    assert all(opened[p] == v for p, v in chosen.items())


def test_a_12_block_gpt() -> None:
    names = gpt_names()
    nodes = group_rows(names)
    groups = groups_of(nodes)
    assert paths(groups) == ["transformer.h", *(f"transformer.h.{i}" for i in range(12))]
    # At 80x24 the panel has seven lines: the stack closed.
    small = visible(nodes, default_open(nodes, 7, {}))
    assert len(small) == 4
    # With room for the blocks (not for their rows) the blocks show, closed.
    roomy = visible(nodes, default_open(nodes, 20, {}))
    assert len(roomy) == 16
    assert sum(1 for s in roomy if isinstance(s.node, Group)) == 13


def test_resnet_stages_and_blocks() -> None:
    names = ["conv1"]
    for stage in range(1, 5):
        for block in range(2):
            names += [f"layer{stage}.{block}.conv1", f"layer{stage}.{block}.conv2"]
            if stage > 1 and block == 0:
                names.append(f"layer{stage}.0.downsample.0")
    names.append("fc")
    top = group_rows(names)
    assert [n if isinstance(n, int) else n.path for n in top] == [
        0,
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        len(names) - 1,
    ]


def test_one_line_in_a_roomy_panel_opens_to_scroll() -> None:
    names = [f"encoder.layers.{i}.{x}" for i in range(15) for x in ("attn", "fc1", "fc2")]
    nodes = group_rows(names)
    assert len(visible(nodes, default_open(nodes, 14, {}))) == 16


def test_flat_models_stay_flat() -> None:
    assert group_rows(["net.0", "net.2", "net.4"]) == (0, 1, 2)
    assert group_rows(["layer0", "layer1", "layer2"]) == (0, 1, 2)
    assert group_rows(["0", "2", "164"]) == (0, 1, 2)


def test_a_path_in_two_separate_runs_is_not_grouped() -> None:
    names = ["h.0.a", "h.0.b", "x", "h.0.c"]
    assert groups_of(group_rows(names)) == []
