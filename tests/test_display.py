"""axon.display: the seed's model table, totals, policies, train-only state, containers,
blocks, the Mermaid graph and the notebook repr.

References: the table printed in the seed (``seeds/000``, "Model Creation"), Axon's own
docstring totals for the same model (109898 parameters, 439592 bytes), and parameter
counts worked out by hand.
"""

import io
import re
import shutil

import pytest
from rich.table import Table

import axon
from axon.display import as_graph, as_table, as_table_str, format_bytes


def seed_model():
    return (
        axon.input("input", shape=(None, 784))
        .pipe(axon.dense, 128, activation="relu")
        .pipe(axon.batch_norm)
        .pipe(axon.dropout, rate=0.8)
        .pipe(axon.dense, 64)
        .pipe(axon.tanh)
        .pipe(axon.dense, 10)
        .pipe(axon.activation, "softmax")
    )


def parse(text):
    """Rows of a rendered table as lists of cells, each cell a list of its lines; and the
    lines after the table."""
    lines = text.splitlines()
    rows, current, tail, seen_table = [], None, [], False
    for line in lines:
        if line.startswith("+"):
            seen_table = True
            if current is not None:
                rows.append(current)
            current = None
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if current is None:
                current = [[c] if c else [] for c in cells]
            else:
                for cell, c in zip(current, cells):
                    if c:
                        cell.append(c)
        elif seen_table:
            tail.append(line)
    return rows, tail


def test_seed_model_table_rows_match_the_seed():
    text = as_table_str(seed_model(), axon.template((1, 784), "f32"))
    assert text.splitlines()[0].strip() == "Model"
    rows, tail = parse(text)
    header, body = rows[0], rows[1:]
    assert [c[0] for c in header] == ["Layer", "Input Shape", "Output Shape", "Options", "Parameters"]
    # (layer, input shapes, output shape, options, parameters) from the seed's table,
    # with Python's tuple notation instead of Elixir's
    expected = [
        ('input ( input )', "[]", "(1, 784)", ["shape: (None, 784)", "optional: False"], []),
        ('dense_0 ( dense["input"] )', "[(1, 784)]", "(1, 128)", [], ["kernel: f32[784][128]", "bias: f32[128]"]),
        ('relu_0 ( relu["dense_0"] )', "[(1, 128)]", "(1, 128)", [], []),
        ('batch_norm_0 ( batch_norm["relu_0"] )', "[(1, 128)]", "(1, 128)",
         ["epsilon: 1e-05", "channel_index: -1", "momentum: 0.1"],
         ["gamma: f32[128]", "beta: f32[128]", "mean: f32[128]", "var: f32[128]"]),
        ('dropout_0 ( dropout["batch_norm_0"] )', "[(1, 128)]", "(1, 128)", ["rate: 0.8"], []),
        ('dense_1 ( dense["dropout_0"] )', "[(1, 128)]", "(1, 64)", [], ["kernel: f32[128][64]", "bias: f32[64]"]),
        ('tanh_0 ( tanh["dense_1"] )', "[(1, 64)]", "(1, 64)", [], []),
        ('dense_2 ( dense["tanh_0"] )', "[(1, 64)]", "(1, 10)", [], ["kernel: f32[64][10]", "bias: f32[10]"]),
        ('softmax_0 ( softmax["dense_2"] )', "[(1, 10)]", "(1, 10)", [], []),
    ]
    assert len(body) == len(expected)
    for row, (layer, ins, out, opts, params) in zip(body, expected):
        assert row[0] == [layer]
        assert row[1] == [ins]
        assert row[2] == [out]
        assert row[3] == opts
        assert row[4] == params
    # 784*128+128 + 4*128 + 128*64+64 + 64*10+10 = 109898 f32 values (Axon's docstring)
    assert tail == ["Total Parameters: 109898", "Total Parameters Memory: 439.59 kilobytes"]


def test_as_table_returns_a_rich_table_with_caption():
    table = as_table(seed_model(), axon.template((1, 784)))
    assert isinstance(table, Table)
    assert table.title == "Model"
    assert table.row_count == 9
    assert table.caption == "Total Parameters: 109898\nTotal Parameters Memory: 439.59 kilobytes"


def test_train_mode_shows_train_only_state():
    rows, tail = parse(as_table_str(seed_model(), axon.template((1, 784)), mode="train"))
    dropout = next(r for r in rows if r[0][0].startswith("dropout_0"))
    assert dropout[4] == ["key: u32[2]"]
    # + two uint32 key words: 4 * 109898 + 2 * 4 = 439600 bytes
    assert tail == ["Total Parameters: 109900", "Total Parameters Memory: 439.60 kilobytes"]


def test_memory_follows_the_params_policy():
    model = axon.mixed_precision.apply_policy(
        seed_model(), axon.mixed_precision.create_policy(params="bf16"), only=["dense"]
    )
    rows, tail = parse(as_table_str(model, axon.template((1, 784))))
    dense = next(r for r in rows if r[0][0].startswith("dense_0"))
    assert dense[4] == ["kernel: bf16[784][128]", "bias: bf16[128]"]
    dense_params = 100480 + 8256 + 650
    assert tail == ["Total Parameters: 109898", f"Total Parameters Memory: {format_bytes(2 * dense_params + 4 * 512)}"]
    assert format_bytes(2 * dense_params + 4 * 512) == "220.82 kilobytes"


def test_format_bytes_units():
    assert format_bytes(0) == "0 bytes"
    assert format_bytes(999) == "999 bytes"
    assert format_bytes(1000) == "1.00 kilobytes"
    assert format_bytes(2_500_000) == "2.50 megabytes"
    assert format_bytes(7 * 10**9) == "7.00 gigabytes"


def test_multiple_inputs_containers_and_options():
    a = axon.input("a", shape=(None, 2))
    b = axon.input("b", shape=(None, 3))
    cat = axon.concatenate(a, b, axis=-1)
    model = axon.container({"cat": cat, "a": a})
    rows, tail = parse(as_table_str(model, {"a": axon.template((4, 2)), "b": axon.template((4, 3))}))
    by_name = {r[0][0].split(" ")[0]: r for r in rows[1:]}
    assert by_name["concatenate_0"][0] == ['concatenate_0 ( concatenate["a", "b"] )']
    assert by_name["concatenate_0"][1] == ["[(4, 2), (4, 3)]"]
    assert by_name["concatenate_0"][2] == ["(4, 5)"]
    assert by_name["concatenate_0"][3] == ["axis: -1"]
    assert by_name["container_0"][0] == ['container_0 ( container["concatenate_0", "a"] )']
    assert by_name["container_0"][2] == ["{'cat': (4, 5), 'a': (4, 2)}"]
    assert tail[0] == "Total Parameters: 0"


def test_blocks_and_namespaces():
    shared = axon.block(lambda x: axon.dense(x, 4))
    x = axon.input("x", shape=(None, 4))
    inner = axon.namespace(axon.dense(x, 3), "enc")
    model = axon.add(shared(x), shared(axon.relu(x)))
    model = axon.concatenate(model, inner)
    rows, tail = parse(as_table_str(model, axon.template((2, 4))))
    names = [r[0][0] for r in rows[1:]]
    assert 'enc.dense_0 ( dense["x"] )' in names
    blocks = [r for r in rows[1:] if r[0][0].startswith("block_0")]
    assert len(blocks) == 2
    # the shared parameters are listed (and counted) once
    assert blocks[0][4] == ["dense_0.kernel: f32[4][4]", "dense_0.bias: f32[4]"]
    assert blocks[1][4] == []
    assert tail[0] == f"Total Parameters: {4 * 4 + 4 + 4 * 3 + 3}"


def test_errors_are_clear():
    with pytest.raises(ValueError, match="mode"):
        as_table(seed_model(), axon.template((1, 784)), mode="eval")
    with pytest.warns(UserWarning, match=r"input 'input' has shape \(1, 3\), but the model declares shape \(None, 784\)"):
        as_table(seed_model(), axon.template((1, 3)))
    with pytest.raises(TypeError, match="axon graph"):
        as_table("model", axon.template((1, 3)))


def test_as_graph_mermaid():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2, activation="relu")
    text = as_graph(model, axon.template((5, 3)))
    assert text.splitlines() == [
        "graph TD;",
        '0[/"x (input) (5, 3)"/];',
        '1["dense_0 (dense) (5, 2)"];',
        '2["relu_0 (relu) (5, 2)"];',
        "0 --> 1;",
        "1 --> 2;",
    ]
    assert as_graph(model, axon.template((5, 3)), direction="left_right").startswith("graph LR;")
    with pytest.raises(ValueError, match="direction"):
        as_graph(model, axon.template((5, 3)), direction="bottom_up")


def test_as_graph_multi_parent_edges():
    a, b = axon.input("a", shape=(None, 1)), axon.input("b", shape=(None, 1))
    text = as_graph(axon.add(a, b), {"a": axon.template((1, 1)), "b": axon.template((1, 1))})
    edges = [line for line in text.splitlines() if "-->" in line]
    assert sorted(edges) == ["0 --> 2;", "1 --> 2;"]


def parse_dot(text):
    """``(rankdir, {node id: (label, shape)}, [(parent id, child id)])`` of as_graph's dot."""
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "digraph axon {" and lines[-1] == "}"
    rankdir = re.fullmatch(r"rankdir=(\w+);", lines[1])[1]
    nodes, edges = {}, []
    for line in lines[3:-1]:
        if m := re.fullmatch(r'(n\d+) \[label="((?:[^"\\]|\\.)*)"(?:, shape=(\w+))?\];', line):
            nodes[m[1]] = (m[2], m[3] or "box")
        elif m := re.fullmatch(r"(n\d+) -> (n\d+);", line):
            edges.append((m[1], m[2]))
        else:
            raise AssertionError(f"unexpected dot line {line!r}")
    return rankdir, nodes, edges


def test_as_graph_dot_structure():
    a, b = axon.input("a", shape=(None, 2)), axon.input("b", shape=(None, 2))
    model = axon.add(a, b).pipe(axon.dense, 3)
    templates = {"a": axon.template((4, 2)), "b": axon.template((4, 2))}
    rankdir, nodes, edges = parse_dot(as_graph(model, templates, format="dot"))
    assert rankdir == "TB"
    by_label = {label: (nid, shape) for nid, (label, shape) in nodes.items()}
    assert set(by_label) == {"a (input) (4, 2)", "b (input) (4, 2)", "add_0 (add) (4, 2)", "dense_0 (dense) (4, 3)"}
    assert by_label["a (input) (4, 2)"][1] == by_label["b (input) (4, 2)"][1] == "parallelogram"
    assert by_label["dense_0 (dense) (4, 3)"][1] == "box"
    ids = {label.split(" ")[0]: nid for label, (nid, _) in by_label.items()}
    assert sorted(edges) == sorted([(ids["a"], ids["add_0"]), (ids["b"], ids["add_0"]), (ids["add_0"], ids["dense_0"])])
    assert parse_dot(as_graph(model, templates, format="dot", direction="left_right"))[0] == "LR"
    with pytest.raises(ValueError, match=r"format to be one of \['mermaid', 'dot', 'svg', 'png'\]"):
        as_graph(model, templates, format="jpeg")


def test_as_graph_dot_escapes_quotes_and_backslashes():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2, name='say "hi" \\ there')
    _, nodes, _ = parse_dot(as_graph(model, axon.template((1, 3)), format="dot"))
    assert nodes["n1"] == ('say \\"hi\\" \\\\ there (dense) (1, 2)', "box")


def test_as_graph_svg_and_png_need_graphviz(monkeypatch):
    import axon.display as display

    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    monkeypatch.setattr(display.shutil, "which", lambda name: None)
    assert not display.has_graphviz()
    with pytest.raises(RuntimeError, match="format='svg' needs Graphviz's dot program.*format='mermaid'"):
        as_graph(model, axon.template((1, 3)), format="svg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_as_graph_svg_and_png_drawn_by_graphviz():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    svg = as_graph(model, axon.template((1, 3)), format="svg")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "x (input) (1, 3)" in svg and "dense_0 (dense) (1, 2)" in svg
    png = as_graph(model, axon.template((1, 3)), format="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_notebook_repr_shows_the_table_or_falls_back():
    html = seed_model()._repr_html_()
    assert "Total Parameters: 109898" in html
    assert re.search(r"dense_0 \( dense\[&quot;input&quot;\] \)", html)
    no_shape = axon.input("x").pipe(axon.relu)
    assert no_shape._repr_html_() == "<pre>&lt;Axon inputs={&#x27;x&#x27;: None} output=&#x27;relu_0&#x27; nodes=2&gt;</pre>"


def test_printing_the_table_prints_the_rendered_table():
    model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2)
    table = as_table(model, axon.template((1, 3)))
    text = str(table)
    assert text == as_table_str(model, axon.template((1, 3)))
    assert "rich.table.Table object" not in text and "\x1b[" not in text
    assert "| dense_0 ( dense[\"x\"] ) | [(1, 3)]" in text
    assert text.splitlines()[-2:] == ["Total Parameters: 8", "Total Parameters Memory: 32 bytes"]
    assert table._repr_html_().startswith("<pre>") and "dense_0 ( dense[&quot;x&quot;] )" in table._repr_html_()
    # still a rich renderable
    from rich.console import Console

    assert isinstance(table, Table)
    console = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    console.print(table)
    assert "dense_0" in console.export_text()
