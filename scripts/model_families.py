"""The toolkit model families of scripts/make-extra-models.py: real architectures from
PaddleClas 2.6.0 and PaddleNLP 2.8.1 (pip packages, installed by make-extra-models.sh with
--no-deps; their pretrained weights download at run time, which this machine cannot do), with
numpy-seeded weights.

Each entry of FAMILIES: name -> (family, builder, input specs, feeds). The builder runs in both
the PIR process and the legacy-export subprocess (FLAGS_enable_pir_api=0, legacy_shims
installed), so it must build the same model, with the same parameter names, in either.
"""
import importlib
import os
import site
import sys
import types

import numpy as np

SEED = 2024


class _Stub(types.ModuleType):
    """A module the toolkits import but no inference path uses (sklearn, yaml, requests...)."""

    def __getattr__(self, k):
        if k.startswith("__"):
            raise AttributeError(k)
        if k[:1].isupper():
            return type(k, (object,), {"__init__": lambda self, *a, **kw: None})
        return _Stub(f"{self.__name__}.{k}")

    def __call__(self, *a, **k):
        return _Stub("call")


def _import(name, own=("ppcls", "ppdet", "paddlenlp", "paddle")):
    """Imports `name`, stubbing missing third-party modules the toolkit imports at top level."""
    for _ in range(60):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            missing = e.name
            if missing is None or missing.split(".")[0] in own:
                raise
            parts = missing.split(".")
            for i in range(1, len(parts) + 1):
                n = ".".join(parts[:i])
                if n not in sys.modules:
                    m = _Stub(n)
                    m.__path__ = []
                    sys.modules[n] = m
            top = name.split(".")[0]
            for k in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
                del sys.modules[k]
    raise RuntimeError(f"import {name}: too many missing modules")


def _ppcls(module):
    for d in site.getsitepackages():
        p = os.path.join(d, "paddleclas")
        if os.path.isdir(os.path.join(p, "ppcls")) and p not in sys.path:
            sys.path.insert(0, p)
    m = _import("ppcls.arch.backbone." + module)
    _import("ppcls.utils.logger").init_logger()
    return m


def init_weights(model, seed, transformer=False):
    """Deterministic numpy init over the state_dict, with non-trivial BN statistics."""
    rs = np.random.RandomState(seed)
    for key, t in model.state_dict().items():
        shape = list(t.shape)
        if "float32" not in str(t.dtype):  # int buffers (position ids) keep their values
            continue
        if key.endswith("_mean"):
            v = 0.1 * rs.standard_normal(shape)
        elif key.endswith("_variance"):
            v = rs.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:  # conv [out, in/groups, kh, kw]: He normal
            v = rs.standard_normal(shape) * np.sqrt(2.0 / max(1, np.prod(shape[1:])))
        elif len(shape) == 2 and transformer:  # linear / embedding: truncated normal 0.02
            v = np.clip(0.02 * rs.standard_normal(shape), -0.04, 0.04)
        elif len(shape) == 2:  # linear [in, out]
            v = rs.standard_normal(shape) * np.sqrt(1.0 / shape[0])
        elif len(shape) == 3:  # position embeddings / class tokens [1, n, d]
            v = 0.02 * rs.standard_normal(shape)
        elif key.endswith("weight") or key.endswith("scale"):  # BN / LN scale
            v = 1.0 + 0.1 * rs.standard_normal(shape)
        else:  # shifts, biases, learnable affine/lab scalars
            v = 0.05 * rs.standard_normal(shape)
            if "lab" in key and key.endswith("scale"):
                v += 1.0
        t.set_value(v.astype("float32"))
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------
def _clas(module, fn, transformer=False, **kw):
    def build(seed):
        net = getattr(_ppcls(module), fn)(pretrained=False, **kw)
        return init_weights(net, seed, transformer)
    return build


def _image(shape):
    def feeds():
        rs = np.random.RandomState(SEED)
        # ImageNet-normalized noise with a smooth component (not pure noise: logits spread)
        x = rs.standard_normal(shape).astype("float32")
        return {"x": x}
    return feeds


def _ernie_config():
    c = _import("paddlenlp.transformers.ernie.configuration")
    # ERNIE 3.0 medium (6 layers, d=768, 12 heads, FFN 3072, vocab 40000, task-type
    # embeddings); fewer layers than the medium keep the export and the tests short.
    return c.ErnieConfig(vocab_size=40000, hidden_size=768, num_hidden_layers=4,
                         num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                         max_position_embeddings=2048, type_vocab_size=4, use_task_id=True,
                         task_type_vocab_size=16, num_labels=7, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0, pad_token_id=0)


def _nlp(cls):
    def build(seed):
        import paddle
        m = _import("paddlenlp.transformers.ernie.modeling")
        paddle.seed(seed)
        net = getattr(m, cls)(_ernie_config())
        return init_weights(net, seed, transformer=True)
    return build


def _tokens(batch, seq):
    def feeds():
        rs = np.random.RandomState(SEED)
        ids = rs.randint(1, 40000, size=(batch, seq)).astype("int64")
        ids[:, 0] = 1
        ids[-1, seq - 5:] = 0  # padding in the last row: the mask is exercised
        tt = np.zeros((batch, seq), "int64")
        tt[:, seq // 2:] = 1
        return {"input_ids": ids, "token_type_ids": tt}
    return feeds


IMG = [("x", [None, 3, 224, 224], "float32")]
TOK = [("input_ids", [None, None], "int64"), ("token_type_ids", [None, None], "int64")]

# name -> (family, builder, input specs, feeds)
FAMILIES = {
    "pplcnet_x1_0": ("PaddleClas PP-LCNet x1.0", _clas("legendary_models.pp_lcnet", "PPLCNet_x1_0"),
                     IMG, _image([1, 3, 224, 224])),
    "pphgnetv2_b0": ("PaddleClas PP-HGNetV2-B0", _clas("legendary_models.pp_hgnet_v2", "PPHGNetV2_B0"),
                     IMG, _image([1, 3, 224, 224])),
    "resnet50_vd": ("PaddleClas ResNet50-vd", _clas("legendary_models.resnet", "ResNet50_vd"),
                    IMG, _image([1, 3, 224, 224])),
    "deit_tiny": ("PaddleClas DeiT-tiny (distilled ViT)",
                  _clas("model_zoo.distilled_vision_transformer", "DeiT_tiny_distilled_patch16_224", True),
                  IMG, _image([1, 3, 224, 224])),
    "swin_tiny": ("PaddleClas Swin-T (window 7)",
                  _clas("legendary_models.swin_transformer", "SwinTransformer_tiny_patch4_window7_224", True),
                  IMG, _image([1, 3, 224, 224])),
    "ernie3_tokcls": ("PaddleNLP ERNIE 3.0 token classification (4 layers of the medium)",
                      _nlp("ErnieForTokenClassification"), TOK, _tokens(2, 40)),
    "ernie3_uie": ("PaddleNLP UIE span extraction (ERNIE 3.0, 4 layers of the medium)",
                   _nlp("UIE"), TOK, _tokens(2, 40)),
}


# Built only with --only: Kayak does not load it yet (Swin: roll, set_value; its paddle2onnx
# export uses If), so the default build skips it.
PENDING = ["swin_tiny"]


def specs(name):
    from paddle.static import InputSpec
    return [InputSpec(s, d, n) for n, s, d in FAMILIES[name][2]]


def legacy_export(name, prefix, seed):
    """Subprocess body (FLAGS_enable_pir_api=0): the legacy ProgramDesc export."""
    import paddle
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import legacy_shims
    legacy_shims.install()
    with paddle.utils.unique_name.guard():
        model = FAMILIES[name][1](seed)
        paddle.jit.save(model, prefix, input_spec=specs(name))
    if not os.path.exists(prefix + ".pdmodel"):
        raise RuntimeError("legacy export wrote no .pdmodel")
