"""Published checkpoints → distill's self-describing model file (the layout of a run's ``student.pt``).

One function per published layout reads the file's state dict, renames its keys to the registered model's and reads
the architecture arguments off the tensor shapes. :func:`convert_file` then builds that model, checks that every key
and shape fits (a wrong or truncated file is one line naming the file and what does not fit) and writes

``{"format": "distill-model/1", "model": {"name", "args"}, "state_dict", "source": {...}}``

which ``deploy.model.load_deployable``, ``pretrained:``, ``distill eval`` and ``distill predict`` take as it is.

Layouts (``FORMATS``):

* ``basicsr``: BasicSR's EDSR / RCAN / SwinIR checkpoints, weights under ``params_ema`` or ``params`` (picked in that
  order), keys as in ``basicsr.archs`` (``conv_first``, ``body.N.conv1`` …);
* ``swinir``: the SwinIR authors' release files (``params``, keys as BasicSR's SwinIR; ``img_size`` is read from the
  stored attention masks);
* ``edsr-pytorch``: EDSR-PyTorch's ``edsr_*.pt`` (``head.0``, ``body.N.body.{0,2}``, ``tail``, ``sub_mean``);
* ``rcan``: the RCAN authors' ``RCAN_BIX*.pt`` (EDSR-PyTorch's code base: ``body.G.body.B.body.3.conv_du``);
* ``scnn``: DBCNN's SCNN as DBCNN-PyTorch's ``scnn.pkl`` and pyiqa's ``DBCNN_scnn-*.pth`` store it
  (``module.features.*``, ``projection.*``, ``classifier.*``);
* ``pyiqa-dbcnn`` (alias ``dbcnn-pytorch``): a whole DBCNN (``features1`` VGG-16, ``features2`` SCNN, ``fc``), pyiqa's
  files under ``params`` or DBCNN-PyTorch's ``DataParallel`` state dict;
* ``pyiqa-hyperiqa``: pyiqa's HyperNet (timm ResNet-50 ``base_model``, ``lda_modules``, ``fc_w_modules`` …);
* ``matconvnet`` (alias ``vggm``): MatConvNet SimpleNN ``.mat`` files of VGG-M and VGG-16.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distill.errors import CheckpointError, first_line

__all__ = ["FORMATS", "Converted", "convert_file", "convert_state", "write_model_file"]

_DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass
class Converted:
    """A state dict in a registered model's layout and the arguments that build that model."""

    model: str
    args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)


Converter = Callable[[Any, Mapping[str, Any]], Converted]


class _Unfit(Exception):
    """What in a file does not fit its layout (turned into a one-line CheckpointError naming the file)."""


# ------------------------------------------------------------------------------------------------ reading helpers
def _state(raw: Any, keys: tuple[str, ...] = ("params_ema", "params", "state_dict", "model")) -> dict[str, Any]:
    """The state dict inside a loaded file (under one of ``keys``, or the file itself), ``module.`` prefixes off."""
    if isinstance(raw, Mapping):
        for key in keys:
            if isinstance(raw.get(key), Mapping) and raw[key] and _tensors(raw[key]):
                raw = raw[key]
                break
    if not isinstance(raw, Mapping) or not raw or not _tensors(raw):
        have = ", ".join(map(str, list(raw)[:6])) if isinstance(raw, Mapping) else type(raw).__name__
        raise _Unfit(f"no state dict of tensors (the file holds: {have or 'nothing'})")
    return {str(k).removeprefix("module."): v for k, v in raw.items()}


def _tensors(mapping: Mapping[str, Any]) -> bool:
    return all(isinstance(v, torch.Tensor) for v in mapping.values())


def _need(state: Mapping[str, torch.Tensor], *keys: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise _Unfit(f"keys {missing[:4]} missing (has {sorted(state)[:4]} …)")


def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) over the keys."""
    rx = re.compile(pattern)
    return sorted({int(m[1]) for k in state if (m := rx.fullmatch(k))})


def _upscale(state: Mapping[str, torch.Tensor], prefix: str, num_feat: int) -> int:
    """The scale of a BasicSR/EDSR-style upsampler: convs to 4·C (×2 each) or one conv to 9·C (×3)."""
    convs = [state[f"{prefix}.{i}.weight"] for i in _indices(state, rf"{re.escape(prefix)}\.(\d+)\.weight")]
    if len(convs) == 1 and convs[0].shape[0] == 9 * num_feat:
        return 3
    if convs and all(c.shape[0] == 4 * num_feat for c in convs):
        return 2 ** len(convs)
    raise _Unfit(f"upsampler '{prefix}' has convs {[tuple(c.shape) for c in convs]}; expected 4·C (x2, x4) or 9·C (x3)")


def _rgb_mean(state: Mapping[str, torch.Tensor], key: str, rgb_range: float = 255.0) -> list[float] | None:
    """EDSR-PyTorch's ``add_mean`` (a MeanShift conv, bias = rgb_range·mean) → the RGB mean, DIV2K's when equal."""
    bias = state.get(key)
    if bias is None:
        return None
    mean = [float(v) / rgb_range for v in bias.flatten()]
    if all(abs(a - b) < 1e-5 for a, b in zip(mean, _DIV2K_MEAN, strict=True)):
        return list(_DIV2K_MEAN)
    return mean


def _rename(state: Mapping[str, torch.Tensor], rules: list[tuple[str, str]], drop: tuple[str, ...] = ()) -> dict:
    """Keys renamed by the first matching ``(regex, replacement)``; a key no rule matches is an error."""
    out: dict[str, torch.Tensor] = {}
    unmatched = []
    for key, value in state.items():
        if key.startswith(drop):
            continue
        for pattern, repl in rules:
            new, n = re.subn(f"^{pattern}$", repl, key)
            if n:
                out[new] = value
                break
        else:
            unmatched.append(key)
    if unmatched:
        raise _Unfit(f"unexpected keys {unmatched[:4]}")
    return out


# ------------------------------------------------------------------------------------------------ SR layouts
def _basicsr_sr(raw: Any, hints: Mapping[str, Any]) -> Converted:
    state = _state(raw)
    if "patch_embed.norm.weight" in state or any(k.startswith("layers.0.residual_group") for k in state):
        return _swinir_state(state, hints)
    if any(".residual_group." in k for k in state):
        return _rcan_args(state, hints)
    if "body.0.conv1.weight" in state:
        return _edsr_args(state, hints)
    raise _Unfit("not BasicSR's EDSR, RCAN or SwinIR (no body.0.conv1, body.0.residual_group or patch_embed keys)")


def _edsr_args(state: dict[str, torch.Tensor], hints: Mapping[str, Any]) -> Converted:
    _need(state, "conv_first.weight", "conv_after_body.weight", "conv_last.weight")
    num_feat = int(state["conv_first.weight"].shape[0])
    num_block = len(_indices(state, r"body\.(\d+)\.conv1\.weight"))
    args: dict[str, Any] = {"num_feat": num_feat, "num_block": num_block,
                            "upscale": _upscale(state, "upsample", num_feat)}  # fmt: skip
    notes = []
    if "res_scale" in hints:
        args["res_scale"] = float(hints["res_scale"])
    else:  # not stored in the weights: EDSR's large model (c256 b32) used 0.1, the baseline 1.0
        args["res_scale"] = 0.1 if num_feat >= 256 else 1.0
        notes.append(f"res_scale {args['res_scale']} (not stored in the file; EDSR uses 0.1 for c256, else 1.0)")
    for key in ("rgb_mean", "img_range"):
        if key in hints:
            args[key] = hints[key]
    return Converted("edsr", args, state, notes)


def _edsr_pytorch(raw: Any, hints: Mapping[str, Any]) -> Converted:
    state = _state(raw)
    _need(state, "head.0.weight", "tail.1.weight")
    blocks = _indices(state, r"body\.(\d+)\.body\.0\.weight")
    if not blocks or blocks != list(range(len(blocks))):
        raise _Unfit("no residual blocks body.N.body.0 (EDSR-PyTorch's layout)")
    n = len(blocks)
    mean = _rgb_mean(state, "add_mean.bias")
    rules = [
        (r"head\.0\.(weight|bias)", r"conv_first.\1"),
        (r"body\.(\d+)\.body\.0\.(weight|bias)", r"body.\1.conv1.\2"),
        (r"body\.(\d+)\.body\.2\.(weight|bias)", r"body.\1.conv2.\2"),
        (rf"body\.{n}\.(weight|bias)", r"conv_after_body.\1"),
        (r"tail\.0\.(\d+)\.(weight|bias)", r"upsample.\1.\2"),
        (r"tail\.1\.(weight|bias)", r"conv_last.\1"),
    ]
    converted = _edsr_args(_rename(state, rules, drop=("sub_mean.", "add_mean.")), hints)
    if mean is not None and "rgb_mean" not in hints:
        converted.args["rgb_mean"] = mean
    return converted


def _rcan_args(state: dict[str, torch.Tensor], hints: Mapping[str, Any]) -> Converted:
    _need(state, "conv_first.weight", "body.0.residual_group.0.rcab.3.attention.1.weight")
    num_feat = int(state["conv_first.weight"].shape[0])
    squeeze = num_feat // int(state["body.0.residual_group.0.rcab.3.attention.1.weight"].shape[0])
    args: dict[str, Any] = {
        "num_feat": num_feat,
        "num_group": len(_indices(state, r"body\.(\d+)\.conv\.weight")),
        "num_block": len(_indices(state, r"body\.0\.residual_group\.(\d+)\.rcab\.0\.weight")),
        "squeeze_factor": squeeze,
        "upscale": _upscale(state, "upsample", num_feat),
    }
    for key in ("rgb_mean", "img_range", "res_scale"):
        if key in hints:
            args[key] = hints[key]
    return Converted("rcan", args, state)


def _rcan(raw: Any, hints: Mapping[str, Any]) -> Converted:
    state = _state(raw)
    _need(state, "head.0.weight", "tail.1.weight")
    groups = _indices(state, r"body\.(\d+)\.body\.0\.body\.0\.weight")
    if not groups:
        raise _Unfit("no residual groups body.G.body.B.body.0 (the RCAN authors' layout)")
    ng = len(groups)
    nb = len(_indices(state, r"body\.0\.body\.(\d+)\.body\.0\.weight"))
    mean = _rgb_mean(state, "add_mean.bias")
    rcab = r"body\.(\d+)\.body\.(\d+)\.body"
    rules = [
        (r"head\.0\.(weight|bias)", r"conv_first.\1"),
        (r"body\.(\d+)\.body\.(\d+)\.body\.0\.(weight|bias)", r"body.\1.residual_group.\2.rcab.0.\3"),
        (r"body\.(\d+)\.body\.(\d+)\.body\.2\.(weight|bias)", r"body.\1.residual_group.\2.rcab.2.\3"),
        (rf"{rcab}\.3\.conv_du\.0\.(weight|bias)", r"body.\1.residual_group.\2.rcab.3.attention.1.\3"),
        (rf"{rcab}\.3\.conv_du\.2\.(weight|bias)", r"body.\1.residual_group.\2.rcab.3.attention.3.\3"),
        (rf"body\.(\d+)\.body\.{nb}\.(weight|bias)", r"body.\1.conv.\2"),
        (rf"body\.{ng}\.(weight|bias)", r"conv_after_body.\1"),
        (r"tail\.0\.(\d+)\.(weight|bias)", r"upsample.\1.\2"),
        (r"tail\.1\.(weight|bias)", r"conv_last.\1"),
    ]  # fmt: skip
    converted = _rcan_args(_rename(state, rules, drop=("sub_mean.", "add_mean.")), hints)
    if mean is not None and "rgb_mean" not in hints:
        converted.args["rgb_mean"] = mean
    return converted


def _swinir(raw: Any, hints: Mapping[str, Any]) -> Converted:
    return _swinir_state(_state(raw), hints)


def _swinir_state(state: dict[str, torch.Tensor], hints: Mapping[str, Any]) -> Converted:
    _need(state, "conv_first.weight", "patch_embed.norm.weight")
    embed_dim = int(state["conv_first.weight"].shape[0])
    layers = _indices(state, r"layers\.(\d+)\.residual_group\.blocks\.0\.norm1\.weight")
    depths = [len(_indices(state, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.norm1\.weight")) for i in layers]
    bias_table = "residual_group.blocks.0.attn.relative_position_bias_table"
    heads = [int(state[f"layers.{i}.{bias_table}"].shape[1]) for i in layers]
    table = int(state[f"layers.0.{bias_table}"].shape[0])
    window = (math.isqrt(table) + 1) // 2  # (2w-1)² entries
    hidden = int(state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0])
    args: dict[str, Any] = {"embed_dim": embed_dim, "depths": depths, "num_heads": heads, "window_size": window,
                            "mlp_ratio": hidden / embed_dim}  # fmt: skip
    mask = state.get("layers.0.residual_group.blocks.1.attn_mask")
    if mask is not None:  # [windows, w², w²] of the training patch size
        args["img_size"] = window * math.isqrt(int(mask.shape[0]))
    elif "img_size" in hints:
        args["img_size"] = hints["img_size"]
    if "conv_before_upsample.0.weight" in state:
        args["upsampler"] = "pixelshuffle"
        args["upscale"] = _upscale(state, "upsample", int(state["conv_before_upsample.0.weight"].shape[0]))
    elif "upsample.0.weight" in state:
        args["upsampler"] = "pixelshuffledirect"
        args["upscale"] = math.isqrt(int(state["upsample.0.weight"].shape[0]) // 3)
    else:
        raise _Unfit("no upsampler (conv_before_upsample or upsample.0): not a classical/lightweight SR SwinIR")
    args["resi_connection"] = "1conv" if "layers.0.conv.weight" in state else "3conv"
    for key in ("img_range",):
        if key in hints:
            args[key] = hints[key]
    return Converted("swinir", args, state)


# ------------------------------------------------------------------------------------------------ IQA layouts
_SCNN_CONVS = (0, 3, 6, 9, 12, 15, 18, 21, 24)  # conv indices of SCNN's features (conv, BN, ReLU per layer)


def _scnn_trunk_rules(src: str, dst: str) -> list[tuple[str, str]]:
    return [(rf"{src}\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)", rf"{dst}.\1.\2")]


def _scnn(raw: Any, hints: Mapping[str, Any]) -> Converted:
    state = _state(raw)
    _need(state, "features.0.weight", "features.24.weight", "projection.0.weight", "classifier.weight")
    bn = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
    rules = [
        *_scnn_trunk_rules("features", "trunk"),
        (r"projection\.0\.(weight|bias)", r"head.2.\1"),
        (rf"projection\.1\.{bn}", r"head.3.\1"),
        (r"projection\.3\.(weight|bias)", r"head.5.\1"),
        (rf"projection\.4\.{bn}", r"head.6.\1"),
        (r"classifier\.(weight|bias)", r"head.8.\1"),
    ]
    out = _rename(state, rules)
    for key in ("head.2.weight", "head.5.weight"):  # 1x1 convs after the global pool = linear layers
        if out[key].ndim == 4:
            out[key] = out[key].flatten(1)
    return Converted("scnn", {"num_classes": int(state["classifier.weight"].shape[0])}, out)


def _dbcnn(raw: Any, hints: Mapping[str, Any]) -> Converted:
    state = _state(raw)
    _need(state, "features1.0.weight", "features2.0.weight", "fc.weight")
    rules = [
        (r"features1\.(\d+)\.(weight|bias)", r"vgg.\1.\2"),
        *_scnn_trunk_rules("features2", "scnn.trunk"),
        (r"fc\.(weight|bias)", r"fc.\1"),
    ]
    out = _rename(state, rules)
    backbone = "vgg16" if len(_indices(out, r"vgg\.(\d+)\.weight")) == 13 else "vgg11"
    return Converted("dbcnn", {"backbone": backbone}, out)


def _hyperiqa(raw: Any, hints: Mapping[str, Any]) -> Converted:
    state = _state(raw)
    _need(state, "base_model.conv1.weight", "lda_modules.0.0.weight", "fc_w_modules.4.2.weight")
    rules = [
        (r"base_model\.(conv1|bn1|layer\d)\.(.+)", r"backbone.\1.\2"),
        (r"lda_modules\.([0-2])\.0\.weight", r"lda.\1.conv.weight"),
        (r"lda_modules\.([0-2])\.3\.(weight|bias)", r"lda.\1.fc.\2"),
        (r"lda_modules\.3\.2\.(weight|bias)", r"lda4.\1"),
        (r"conv1\.([024])\.(weight|bias)", r"hyper_in.\1.\2"),
        (r"fc_w_modules\.([0-3])\.(weight|bias)", r"weight_convs.\1.\2"),
        (r"fc_w_modules\.4\.2\.(weight|bias)", r"weight_last.\1"),
        (r"fc_b_modules\.([0-4])\.2\.(weight|bias)", r"bias_fcs.\1.\2"),
    ]
    out = _rename(state, rules)
    depth = 50 if out["backbone.layer1.0.conv1.weight"].shape[-1] == 1 else 18
    if depth == 18 and len(_indices(out, r"backbone\.layer3\.(\d+)\.conv1\.weight")) > 2:
        depth = 34
    return Converted("hyperiqa", {"depth": depth}, out)


# ------------------------------------------------------------------------------------------------ MatConvNet
def _matconvnet(raw: Any, hints: Mapping[str, Any]) -> Converted:
    from distill.models.recognition.matconvnet import matconvnet_state

    name, args, state = matconvnet_state(raw)
    return Converted(name, args, state)


#: format name → converter (aliases share one function)
FORMATS: dict[str, Converter] = {
    "basicsr": _basicsr_sr,
    "swinir": _swinir,
    "edsr-pytorch": _edsr_pytorch,
    "rcan": _rcan,
    "scnn": _scnn,
    "pyiqa-scnn": _scnn,
    "dbcnn-pytorch-scnn": _scnn,
    "pyiqa-dbcnn": _dbcnn,
    "dbcnn-pytorch": _dbcnn,
    "pyiqa-hyperiqa": _hyperiqa,
    "matconvnet": _matconvnet,
    "vggm": _matconvnet,
}


# ------------------------------------------------------------------------------------------------ the file
#: where the files of a layout are published (named when FILE is missing)
_WHERE = {
    "matconvnet": "MatConvNet's pretrained models page (www.vlfeat.org/matconvnet/pretrained/)",
    "vggm": "MatConvNet's pretrained models page (www.vlfeat.org/matconvnet/pretrained/)",
}


def _read(path: Path, fmt: str) -> Any:
    if not path.is_file():
        where = _WHERE.get(fmt, "the authors' release")
        raise CheckpointError(
            f"{path}: file not found; download it from {where}, or let `distill weights fetch NAME` do it "
            "(`distill weights list` shows the published models)"
        )
    if FORMATS[fmt] is _matconvnet:
        from scipy.io import loadmat

        try:
            return loadmat(str(path), squeeze_me=True, struct_as_record=False)
        except Exception as err:
            reason = " ".join(str(err).split())[:120] or type(err).__name__
            raise CheckpointError(
                f"{path}: cannot read as a MATLAB file ({reason}); truncated or not MatConvNet's"
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = first_line(err, 120)
        raise CheckpointError(
            f"{path}: cannot read as a PyTorch file ({reason}); it may be truncated or not a {fmt} checkpoint"
        ) from None


def convert_state(fmt: str, path: str | Path, hints: Mapping[str, Any] | None = None) -> Converted:
    """Read ``path`` in layout ``fmt`` and return it in the registered model's layout, checked against the model.

    ``hints``: architecture arguments the file does not store (EDSR's ``res_scale``), e.g. a zoo row's args.
    """
    if fmt not in FORMATS:
        raise CheckpointError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    path = Path(path).expanduser()
    raw = _read(path, fmt)
    try:
        converted = FORMATS[fmt](raw, dict(hints or {}))
    except _Unfit as err:
        raise CheckpointError(f"{path}: not a {fmt} checkpoint: {err}") from None
    except CheckpointError as err:
        raise CheckpointError(f"{path}: not a {fmt} checkpoint: {err}") from None
    except (KeyError, IndexError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: not a {fmt} checkpoint ({type(err).__name__}: {err})") from None
    _fit(converted, path, fmt)
    return converted


def _fit(converted: Converted, path: Path, fmt: str) -> None:
    """Build the target model and make the state dict fit it exactly (BN counters it lacks are filled with 0)."""
    from distill.registry import MODELS

    try:
        model = MODELS.build(converted.model, **dict(converted.args))
    except Exception as err:
        raise CheckpointError(
            f"{path}: the {fmt} file reads as {converted.model}({converted.args}), which cannot be built ({err})"
        ) from None
    own = model.state_dict()
    state = {k: v.detach().clone().contiguous() for k, v in converted.state_dict.items()}
    for key in own:  # files written before BatchNorm counted its batches lack these buffers
        if key not in state and key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if k in state and
              state[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        parts = [f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
                 f"shape (file, model) {shapes[:2]}" if shapes else ""]  # fmt: skip
        raise CheckpointError(
            f"{path}: does not fit {converted.model}({converted.args}) as a {fmt} checkpoint: "
            f"{'; '.join(p for p in parts if p)}"
        )
    converted.state_dict = {k: state[k].to(own[k].dtype) for k in own}


def write_model_file(converted: Converted, out: str | Path, source: Mapping[str, Any]) -> Path:
    """Write the self-describing model file (``student.pt``'s format) atomically; ``source`` says where it came from."""
    from distill.run.checkpoint import MODEL_FORMAT, atomic_save

    out = Path(out)
    atomic_save(
        {
            "format": MODEL_FORMAT,
            "role": "published",
            "model": {"name": converted.model, "args": converted.args},
            "state_dict": converted.state_dict,
            "recipe": None,
            "step": None,
            "source": dict(source),
        },
        out,
    )
    return out


def convert_file(
    fmt: str,
    path: str | Path,
    out: str | Path,
    *,
    hints: Mapping[str, Any] | None = None,
    force: bool = False,
    source: Mapping[str, Any] | None = None,
) -> Converted:
    """``distill convert FORMAT FILE OUT``: convert, check, then write OUT (an existing OUT only with ``force``)."""
    out = Path(out).expanduser()
    if out.exists() and not force:
        raise CheckpointError(f"{out}: already exists; choose another OUT or pass --force to replace it")
    if out.resolve() == Path(path).expanduser().resolve():
        raise CheckpointError(f"{out}: OUT is the file being converted; choose another OUT")
    converted = convert_state(fmt, path, hints)
    write_model_file(converted, out, {"format": fmt, "file": Path(path).name, **(source or {})})
    return converted


def convert_vggm(mat_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Convert MatConvNet's VGG-M (or VGG-16) ``.mat`` to a self-describing model file; return the model arguments."""
    from scipy.io import loadmat

    from distill.models.recognition.matconvnet import matconvnet_state

    mat_path, out_path = Path(mat_path), Path(out_path)
    if not mat_path.is_file():
        raise CheckpointError(
            f"{mat_path}: not found; download imagenet-vgg-m.mat from MatConvNet's pretrained models page "
            "(www.vlfeat.org/matconvnet/pretrained/)"
        )
    try:
        mat = loadmat(str(mat_path), squeeze_me=True, struct_as_record=False)
    except Exception as err:
        raise CheckpointError(f"{mat_path}: cannot read as a MATLAB file ({type(err).__name__}: {err})") from None
    name, args, state = matconvnet_state(mat, str(mat_path))
    write_model_file(Converted(name, args, state), out_path, {"format": "matconvnet", "file": mat_path.name})
    return args
