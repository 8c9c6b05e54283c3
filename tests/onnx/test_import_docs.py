"""The guide's table of supported ONNX ops is the importer's op table."""

import re
from pathlib import Path

from axon.onnx.importer import supported_ops

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "onnx_import.md"


def test_the_guide_lists_exactly_the_supported_ops():
    text = GUIDE.read_text()
    table = text.split("<!-- onnx-import-ops:start -->")[1].split("<!-- onnx-import-ops:end -->")[0]
    rows = dict(re.findall(r"^\| (\w+) \| (.+) \|$", table, re.M))
    assert rows == supported_ops()


def test_the_table_covers_the_ops_torch_exports_for_common_models():
    required = set(["Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "Tanh", "Softmax", "LogSoftmax", "Gelu", "Erf", "Clip", "Gemm", "MatMul", "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "LayerNormalization", "InstanceNormalization", "Dropout", "Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Gather", "Shape", "Constant", "ConstantOfShape", "Identity", "Cast", "ReduceMean", "ReduceSum", "ReduceMax", "Where", "Equal", "Expand", "Pad", "Resize", "LSTM", "GRU"])
    assert required <= set(supported_ops()), sorted(required - set(supported_ops()))
