"""Reference architectures written with axon's public layers, each with the weight map that
loads the standard PyTorch checkpoints into it (see :mod:`axon.pretrained`).

>>> import axon
>>> model = axon.models.resnet(18, num_classes=10)
>>> rules = axon.models.resnet_weight_map()
"""

from axon.models.resnet import resnet, resnet_weight_map

__all__ = ["resnet", "resnet_weight_map"]

from axon.models.bert import BertConfig, bert, bert_weight_map
from axon.models.generate import generate
from axon.models.gpt2 import GPT2Config, gpt2, gpt2_weight_map

__all__ += ["BertConfig", "GPT2Config", "bert", "bert_weight_map", "generate", "gpt2", "gpt2_weight_map"]
