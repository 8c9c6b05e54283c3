"""Reference architectures written with public axon layers, each with its weight map."""

from axon.models.bert import BertConfig, bert, bert_weight_map
from axon.models.generate import generate
from axon.models.gpt2 import GPT2Config, gpt2, gpt2_weight_map
