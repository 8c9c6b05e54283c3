"""Issue 15.3: a real notebook, executed with nbclient in a kernel on this Python: the
training progress is one output per epoch updated in place (display_data, then
update_display_data with the same display id), the model table renders as HTML, and no
output holds a terminal escape code."""

import json
import os
import sys

import axon

SETUP = """
import sys
sys.path.insert(0, {src!r})
import numpy as np
import axon
model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 1)
model
"""

TRAIN = """
rng = np.random.default_rng(0)
x = rng.normal(size=(40, 3)).astype(np.float32)
y = x.sum(axis=1, keepdims=True)
trainer = axon.loop.trainer(model, "mean_squared_error", axon.optimizers.sgd(0.05), log=2)
state = trainer.run((x, y), batch_size=4, epochs=2)
print("trained", sorted(state["dense_0"]))
"""


def execute(nbclient, cells, kernels):
    """Run ``cells`` in a fresh kernel started with this interpreter (a kernelspec in
    ``kernels`` whose argv is ``sys.executable``); return the executed notebook and every
    iopub message as ``(cell index, message type, content)``."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = kernels / "axon-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "axon test", "language": "python"}))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    km = KernelManager(kernel_name="axon-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=300)
    messages = []
    process = client.process_message

    def record(msg, cell, cell_index):
        messages.append((cell_index, msg["msg_type"], msg["content"]))
        return process(msg, cell, cell_index)

    client.process_message = record
    client.execute()
    return nb, messages


def test_progress_updates_in_place_and_no_escape_codes(nbclient, tmp_path):
    src = os.path.dirname(os.path.dirname(axon.__file__))
    nb, messages = execute(nbclient, [SETUP.format(src=src), TRAIN, "print(sys.executable)"], tmp_path / "kernels")
    assert nb.cells[2].outputs[0]["text"].strip() == sys.executable

    everything = json.dumps([cell.outputs for cell in nb.cells]) + json.dumps([m[2] for m in messages])
    assert "\\u001b[" not in everything and "\x1b[" not in everything

    # the model table: HTML
    table = [o for o in nb.cells[0].outputs if o["output_type"] == "execute_result"]
    assert table and "Total Parameters: 4" in table[0]["data"]["text/html"]

    # the training cell: one output per epoch, each updated in place
    shown = [m for m in messages if m[0] == 1 and m[1] == "display_data"]
    updates = [m for m in messages if m[0] == 1 and m[1] == "update_display_data"]
    assert len(shown) == 2
    ids = [m[2]["transient"]["display_id"] for m in shown]
    assert len(set(ids)) == 2
    for display_id in ids:
        mine = [u[2] for u in updates if u[2]["transient"]["display_id"] == display_id]
        assert len(mine) >= 5  # batches 2, 4, 6, 8, 10 and the epoch's end
    final = [o for o in nb.cells[1].outputs if o["output_type"] == "display_data"]
    assert len(final) == 2
    for epoch, output in enumerate(final):
        assert output["data"]["text/plain"].startswith(f"Epoch {epoch} 10/10 [")
        assert "loss:" in output["data"]["text/plain"]
        assert '<progress value="10" max="10"' in output["data"]["text/html"]
    streams = "".join(o.get("text", "") for o in nb.cells[1].outputs if o["output_type"] == "stream")
    assert streams == "trained ['bias', 'kernel']\n"


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, obj):
        self.shown.append(("update", repr(obj), obj._repr_html_()))


def test_notebook_bar_throttles_count_only_updates_and_escapes_html():
    from axon.loop.notebook import NotebookBar

    shown = []

    def display(obj, display_id):
        assert display_id is True
        shown.append(("display", repr(obj), obj._repr_html_()))
        return FakeHandle(shown)

    bar = NotebookBar("Epoch 0", 4, display=display)
    bar.update(1, "loss: <0.5>")
    bar.update(2)  # the count alone, right after: not sent
    bar.update(4, "loss: 0.25", force=True)
    assert [s[0] for s in shown] == ["display", "update", "update"]
    assert shown[1][1].startswith("Epoch 0 1/4 [") and shown[1][1].endswith("loss: <0.5>")
    assert "loss: &lt;0.5&gt;" in shown[1][2] and '<progress value="1" max="4"' in shown[1][2]
    assert shown[2][1].endswith("loss: 0.25")
