"""An exported decoder's attention as ONNX Runtime's GroupQueryAttention, with one packed q/k/v MatMul.

The opset-23 export writes each layer's attention as q/k/v MatMuls, Reshape/Transpose to heads, two
RotaryEmbedding ops (cos/sin recomputed per layer), a Concat per cache tensor, the key/value heads repeated
for every query head (Unsqueeze/Expand/Reshape: a copy of the whole cache per step) and ONNX's Attention
with a boolean mask built from `attention_mask`. ORT's contrib GroupQueryAttention does rotary embedding,
cache concat and grouped attention in one kernel, as ONNX Runtime GenAI's model builder writes it; the
three projections, which read the same activation, become one MatMul with the weights side by side.

Measured on the built-in model's shape (random weights, 12 layers, hidden 192, 3 heads, 1 key/value head),
one decoding step at batch 1 with 128 cached tokens, one ORT thread, medians of interleaved repeats (two runs)
on a 2-core x86-vnni machine (AMD EPYC, AVX-512 VNNI) shared with another job (fp32 numbers are noisy there, int4 ones steady):
- the project's routes, unfused -> fused: `llm int4` 0.61 -> 0.44-0.45 ms (GenAI's builder `-p int4`: 0.44 ms),
  `llm int8` 0.65-0.68 -> 0.49-0.50 ms, fp32 1.36-1.52 -> 1.05-1.15 ms (GenAI's fp32 graph 1.01-1.35 ms);
- GroupQueryAttention alone (int4 by ORT's RTN quantizer): 0.62 -> 0.48-0.49 ms; packing q/k/v on top: 0.43-0.46
  ms (7-10%; 2-4% in fp32);
- rejected: residual Add + RMSNormalization as SkipSimplifiedLayerNormalization (within noise: -4% to +4% fp32,
  +-1% int4) and the MLP's gate/up MatMuls packed with a Split (int4 0.435 vs 0.430 ms without).
A 128-token prompt (batch 1 and 32) is 3-4% faster fused. Logits equal the unfused graph's to 1e-6.

Written by hand: `onnxruntime.transformers.optimizer` (model types gpt2, bert, phi) and onnxscript's
`ort_fusions.optimize_for_ort` fuse nothing in this graph (their patterns are the decomposed MatMul/Softmax
attention of older opsets, not ONNX's Attention and RotaryEmbedding ops).

What the fused graph assumes, as GenAI's does: `attention_mask` is all ones or right-padded (GroupQueryAttention
takes each row's length, `sum(mask) - 1`, not the mask), positions stay below `max_positions` (the cos/sin
tables; beyond it ORT refuses the step with "cos_cache dimension 0 shall not be less than
total_sequence_length"), and a step with several new tokens after a non-empty cache runs at batch 1 only
(ORT: "batch_size must be 1 when sequence_length > 1 and past context is given"). The project feeds full
masks, prompts with an empty cache and decodes one token at a time. Anything but the exact pattern (every
layer; GPT-2's attention, partial or scaled rotary embeddings, heads whose size is not a multiple of 16, which ORT's
kernel refuses) leaves the graph unchanged; `export_decoder` does not fuse a model with a sliding window.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgecompress.onnx.graph_passes import remove_unused

MS_DOMAIN = "com.microsoft"
MASK = "attention_mask"
PAST_PREFIX = "past_key_values."


class _NoMatch(Exception):
    """The graph is not the exported pattern this module rewrites."""


class _Graph:
    """Look-ups over a graph: who produces and who reads each tensor, constants, annotated shapes."""

    def __init__(self, graph: onnx.GraphProto):
        self.producer = {out: node for node in graph.node for out in node.output if out}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.constants = {t.name: t for t in graph.initializer}
        self.inputs = {i.name for i in graph.input}
        self.outputs = {o.name for o in graph.output}
        self.shapes = {info.name: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in info.type.tensor_type.shape.dim]
                       for info in [*graph.value_info, *graph.input, *graph.output]}

    def node(self, name: str, op: str) -> onnx.NodeProto:
        node = self.producer.get(name)
        if node is None or node.op_type != op or node.domain not in ("", "ai.onnx"):
            raise _NoMatch(f"{name}: not made by {op}")
        return node

    def constant(self, name: str) -> np.ndarray:
        if name not in self.constants:
            raise _NoMatch(f"{name}: not a constant")
        return numpy_helper.to_array(self.constants[name])

    def only_reader(self, name: str, op: str) -> onnx.NodeProto:
        readers = self.readers.get(name, [])
        if len(readers) != 1 or readers[0].op_type != op or name in self.outputs:
            raise _NoMatch(f"{name}: not read by one {op} only")
        return readers[0]

    def depends_on(self, name: str, source: str) -> bool:
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current == source:
                return True
            if current not in seen and current in self.producer:
                seen.add(current)
                todo.extend(self.producer[current].input)
        return False


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def fuse_group_query_attention(model: onnx.ModelProto, max_positions: int) -> onnx.ModelProto | None:
    """`model` (an `export_decoder` graph) with every layer's attention as one GroupQueryAttention node, or None
    if the graph is not exactly the expected pattern (then nothing should change). `max_positions` sizes the
    cos/sin tables: the model's context (`max_position_embeddings`). `model` itself is not changed.

    >>> fused = fuse_group_query_attention(onnx.load("lm.onnx"), 512)  # doctest: +SKIP
    """
    try:
        return _fuse(model, max_positions)
    except _NoMatch:
        return None


def _fuse(model: onnx.ModelProto, max_positions: int) -> onnx.ModelProto:
    g = _Graph(model.graph)
    attentions = [n for n in model.graph.node if n.op_type == "Attention" and n.domain in ("", "ai.onnx")]
    if not attentions or MASK not in g.inputs or max_positions < 1:
        raise _NoMatch("no attention")
    masks = {n.input[3] if len(n.input) == 4 else "" for n in attentions}
    if len(masks) != 1 or not g.depends_on(masks.pop(), MASK):  # one mask, made from attention_mask, for every layer
        raise _NoMatch("attention masks")
    layers = [_layer(g, node) for node in attentions]
    inv_freq = layers[0]["inv_freq"]
    if any(layer["inv_freq"].shape != inv_freq.shape or not np.array_equal(layer["inv_freq"], inv_freq) for layer in layers) \
            or 2 * inv_freq.size != layers[0]["head_dim"]:
        raise _NoMatch("rotary frequencies")
    angles = np.arange(max_positions, dtype=np.float32)[:, None] * inv_freq[None, :]  # as the graph computes them

    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    graph = fused.graph
    graph.initializer.extend([
        numpy_helper.from_array(np.cos(angles).astype(np.float32), "gqa.cos_cache"),
        numpy_helper.from_array(np.sin(angles).astype(np.float32), "gqa.sin_cache"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "gqa.one"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "gqa.mask_length_axis"),
    ])
    nodes = [  # GroupQueryAttention's lengths: each row's last position (sum of its mask - 1), and the mask's length
        helper.make_node("ReduceSum", [MASK, "gqa.one"], ["gqa.mask_sum"], keepdims=0, name="gqa.mask_sum"),
        helper.make_node("Sub", ["gqa.mask_sum", "gqa.one"], ["gqa.seqlens_k64"], name="gqa.seqlens_k64"),
        helper.make_node("Cast", ["gqa.seqlens_k64"], ["gqa.seqlens_k"], to=onnx.TensorProto.INT32, name="gqa.seqlens_k"),
        helper.make_node("Shape", [MASK], ["gqa.mask_shape"], name="gqa.mask_shape"),
        helper.make_node("Gather", ["gqa.mask_shape", "gqa.mask_length_axis"], ["gqa.total64"], axis=0, name="gqa.total64"),
        helper.make_node("Cast", ["gqa.total64"], ["gqa.total_sequence_length"], to=onnx.TensorProto.INT32, name="gqa.total_sequence_length"),
    ]
    at = {layer["attention"].output[0]: layer for layer in layers}
    replaced = {out for layer in layers for node in layer["replaced"] for out in node.output}
    for node in graph.node:
        layer = at.get(node.output[0])
        if layer is not None:
            nodes += _fused_nodes(g, graph, layer)
        elif not replaced.intersection(node.output):
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == MS_DOMAIN for o in fused.opset_import):
        fused.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return remove_unused(fused)


def _layer(g: _Graph, attention: onnx.NodeProto) -> dict:
    """What one layer's GroupQueryAttention needs, read off its exported attention."""
    attributes = _attributes(attention)
    if len(attention.input) != 4 or len(attention.output) != 1 or attributes.get("is_causal", 0) or attributes.get("softcap", 0.0) \
            or attributes.get("qk_matmul_output_mode", 0) or "q_num_heads" in attributes or "kv_num_heads" in attributes:
        raise _NoMatch("attention attributes")
    q_rotary, angles = _rotary(g, attention.input[0])
    query, heads, head_dim = _heads(g, q_rotary.input[0])
    caches = []
    for name, rotated in ((attention.input[1], True), (attention.input[2], False)):
        repeat = g.producer.get(name)
        if repeat is not None and repeat.op_type == "Reshape":  # repeat_kv: Reshape(Expand(Unsqueeze(cache)))
            name = g.node(g.node(repeat.input[0], "Expand").input[0], "Unsqueeze").input[0]
        concat = g.node(name, "Concat")
        if len(concat.input) != 2 or concat.output[0] not in g.outputs or not concat.input[0].startswith(PAST_PREFIX) \
                or concat.input[0] not in g.inputs or _attributes(concat).get("axis") not in (2, -2):
            raise _NoMatch("cache concat")
        new = concat.input[1]
        if rotated:
            k_rotary, k_angles = _rotary(g, new)
            if k_angles != angles:
                raise _NoMatch("query and key rotated differently")
            new = k_rotary.input[0]
        caches.append((concat, *_heads(g, new)))
    (k_concat, key, kv_heads, k_dim), (v_concat, value, v_heads, v_dim) = caches
    if not (kv_heads == v_heads and head_dim == k_dim == v_dim and heads % kv_heads == 0):
        raise _NoMatch("head counts")
    if head_dim % 16:  # ORT's CPU kernel: "head_size shall be a multiple of 16"
        raise _NoMatch("head size")
    transpose = g.only_reader(attention.output[0], "Transpose")
    merge = g.only_reader(transpose.output[0], "Reshape")
    if list(_attributes(transpose).get("perm", [])) != [0, 2, 1, 3] or g.shapes.get(merge.output[0], [])[2:] != [heads * head_dim]:
        raise _NoMatch("attention output")
    return {"attention": attention, "query": query, "key": key, "value": value, "past_key": k_concat.input[0], "past_value": v_concat.input[0],
            "present_key": k_concat.output[0], "present_value": v_concat.output[0], "output": merge.output[0], "heads": heads,
            "kv_heads": kv_heads, "head_dim": head_dim, "scale": float(attributes.get("scale", head_dim ** -0.5)),
            "inv_freq": _inv_freq(g, angles), "replaced": [attention, transpose, merge, k_concat, v_concat]}


def _heads(g: _Graph, name: str) -> tuple[str, int, int]:
    """`name` = Transpose(Reshape(x, [batch, sequence, heads, dim]), [0, 2, 1, 3]) -> (x, heads, dim)."""
    transpose = g.node(name, "Transpose")
    reshape = g.node(transpose.input[0], "Reshape")
    split, flat = g.shapes.get(reshape.output[0], []), g.shapes.get(reshape.input[0], [])
    if list(_attributes(transpose).get("perm", [])) != [0, 2, 1, 3] or len(split) != 4 or len(flat) != 3 \
            or not all(isinstance(d, int) and d > 0 for d in split[2:]) or flat[2] != split[2] * split[3]:
        raise _NoMatch("head view")
    return reshape.input[0], split[2], split[3]


def _rotary(g: _Graph, name: str) -> tuple[onnx.NodeProto, str]:
    """`name` = RotaryEmbedding(x, Cos(angles), Sin(angles)), half-split and over the whole head -> (node, angles)."""
    node = g.node(name, "RotaryEmbedding")
    attributes = _attributes(node)
    if len(node.input) != 3 or attributes.get("interleaved", 0) or attributes.get("rotary_embedding_dim", 0):
        raise _NoMatch("rotary embedding")
    cos, sin = g.node(node.input[1], "Cos"), g.node(node.input[2], "Sin")
    if cos.input[0] != sin.input[0]:
        raise _NoMatch("cos and sin of different angles")
    return node, cos.input[0]


def _inv_freq(g: _Graph, angles: str) -> np.ndarray:
    """angles = Cast(Unsqueeze(positions)) * inv_freq, where positions = cached length + arange(sequence): the
    positions GroupQueryAttention derives itself from a full mask."""
    mul = g.node(angles, "Mul")
    positions, frequencies = (mul.input[0], mul.input[1]) if mul.input[1] in g.constants else (mul.input[1], mul.input[0])
    inv_freq = g.constant(frequencies).astype(np.float32).reshape(-1)
    expand = g.node(g.node(g.node(positions, "Cast").input[0], "Unsqueeze").input[0], "Expand")
    arange = g.node(g.node(expand.input[0], "Unsqueeze").input[0], "Range")
    shape = g.node(g.node(arange.input[0], "Squeeze").input[0], "Shape")
    bounds = (_attributes(shape).get("start"), _attributes(shape).get("end"))
    if g.constant(arange.input[2]).item() != 1 or not shape.input[0].startswith(PAST_PREFIX) or bounds != (2, 3):
        raise _NoMatch("positions do not start at the cached length")
    return inv_freq


def _fused_nodes(g: _Graph, graph: onnx.GraphProto, layer: dict) -> list[onnx.NodeProto]:
    """The layer's GroupQueryAttention, after one MatMul for q, k and v where all three are `x @ W` of the same x."""
    name = layer["attention"].name or layer["output"]
    nodes, qkv = [], [layer["query"], layer["key"], layer["value"]]
    matmuls = [g.producer.get(x) for x in qkv]
    if all(m is not None and m.op_type == "MatMul" and m.input[1] in g.constants and len(g.constants[m.input[1]].dims) == 2 for m in matmuls) \
            and len({m.input[0] for m in matmuls}) == 1 and len({g.constants[m.input[1]].dims[0] for m in matmuls}) == 1:
        weight = f"{name}.qkv_weight"
        graph.initializer.append(numpy_helper.from_array(np.concatenate([g.constant(m.input[1]) for m in matmuls], axis=1), weight))
        nodes.append(helper.make_node("MatMul", [matmuls[0].input[0], weight], [f"{name}.qkv"], name=f"{name}.qkv_proj"))
        qkv = [f"{name}.qkv", "", ""]
    nodes.append(helper.make_node(
        "GroupQueryAttention",
        [*qkv, layer["past_key"], layer["past_value"], "gqa.seqlens_k", "gqa.total_sequence_length", "gqa.cos_cache", "gqa.sin_cache"],
        [layer["output"], layer["present_key"], layer["present_value"]], domain=MS_DOMAIN, name=f"{name}.group_query_attention",
        num_heads=layer["heads"], kv_num_heads=layer["kv_heads"], scale=layer["scale"], do_rotary=1, rotary_interleaved=0))
    return nodes
