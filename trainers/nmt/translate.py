"""Translate Spanish to English with a trained checkpoint, and show what each English word attended to.

    python -m trainers.nmt.translate "¿Dónde está mi casa?"
    python -m trainers.nmt.translate "y dijo Dios: sea la luz" --beam 5 --json
    python -m trainers.nmt.translate "el señor es mi pastor" --temperature 0.7 --seed 3

`Translator` (the inference object the app's Translate tab uses) takes and returns plain Python: a dict with
the translation, the output tokens, the source tokens as the model read them, the attention matrix (one row
per output token, one column per source token), the score and, for beam search, the n-best list.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from trainers.common import checkpoint

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "nmt"
MAX_BEAM = 10


class TranslationInputError(ValueError):
    """The input cannot be translated; the message is a sentence for the user."""


def corpus_bleu(hypotheses: list[str], references: list[dict], versions: tuple[str, ...] | None = None) -> float:
    """sacrebleu corpus BLEU on lower-cased, punctuation-split text against every (or the chosen) reference.

    `references` holds one {version: text} dict per hypothesis; segments without a reference in `versions` are
    left out (so single-reference BLEU is computed on the segments that reference covers).
    """
    import sacrebleu

    from trainers.nmt.data import bleu_text

    rows = [(hypothesis, {v: t for v, t in refs.items() if versions is None or v in versions})
            for hypothesis, refs in zip(hypotheses, references)]
    rows = [(hypothesis, refs) for hypothesis, refs in rows if refs]
    if not rows:
        return 0.0
    width = max(len(refs) for _, refs in rows)
    streams = [[None] * len(rows) for _ in range(width)]
    for row, (_, refs) in enumerate(rows):
        for column, text in enumerate(refs.values()):
            streams[column][row] = bleu_text(text)
    hypotheses_text = [bleu_text(hypothesis) for hypothesis, _ in rows]
    return round(float(sacrebleu.corpus_bleu(hypotheses_text, streams, tokenize="13a", lowercase=True).score), 2)


class Translator:
    """Plain-Python inference around a trained `trainers.nmt.model.AttentionSeq2Seq`; `Translator.load(folder)`
    reads a servable folder (model, vocabularies and casing.json)."""

    def __init__(self, model, source_vocab, target_vocab, casing: dict[str, str] | None = None):
        import tensorflow as tf

        self.model = model
        self.casing = casing or {}  # how names and the like are written (casing.json); the model itself is lower-case
        self.source_vocab = source_vocab
        self.target_vocab = target_vocab
        self.max_source_len = model.config.max_source_len
        self.max_target_len = model.config.max_target_len
        self._encode = tf.function(lambda source: model.encode(source, training=False), reduce_retracing=True)
        self._step = tf.function(model.decode_step, reduce_retracing=True)
        # <pad> and <start> are never outputs: forbidding them keeps ids, tokens and attention rows aligned.
        forbidden = np.zeros(target_vocab.size, np.float32)
        forbidden[[target_vocab.pad, target_vocab.start]] = -1e9
        self._forbidden = tf.constant(forbidden)

    @classmethod
    def load(cls, folder: Path) -> "Translator":
        from trainers.nmt import model
        from trainers.nmt.data import CASING_FILE

        casing_path = Path(folder) / CASING_FILE
        casing = checkpoint.read_json(casing_path) if casing_path.is_file() else {}
        return cls(*model.load(Path(folder)), casing=casing)

    # ---- input ----

    def prepare(self, text: str) -> tuple[list[str], list[int]]:
        """Normalised source tokens and ids; raises TranslationInputError with a sentence for bad input."""
        from trainers.nmt.data import source_tokens

        if text is None or not str(text).strip():
            raise TranslationInputError("Type a Spanish sentence to translate.")
        tokens = source_tokens(text)
        if not tokens:
            raise TranslationInputError("The input has no words (only punctuation or symbols); type a Spanish "
                                        "sentence.")
        if len(tokens) > self.max_source_len:
            raise TranslationInputError(f"The input has {len(tokens)} words; this model translates at most "
                                        f"{self.max_source_len} at a time. Split it into shorter sentences.")
        ids = self.source_vocab.encode(tokens)
        if all(i == self.source_vocab.unk for i in ids):
            raise TranslationInputError(f"None of the words ({' '.join(tokens[:8])}) is in the model's Spanish "
                                        f"vocabulary of {self.source_vocab.size} words; try a simpler sentence.")
        return tokens, ids

    def unknown_words(self, tokens: list[str]) -> list[str]:
        return [token for token in tokens if token not in self.source_vocab.index]

    # ---- decoding ----

    def _start(self, id_rows: list[list[int]]):
        import tensorflow as tf

        width = max(len(ids) for ids in id_rows)
        source = np.zeros((len(id_rows), width), np.int32)
        for row, ids in enumerate(id_rows):
            source[row, : len(ids)] = ids
        keys, mask, state, projected_keys = self._encode(tf.constant(source))
        return state, (keys, mask, projected_keys)

    def _step_fn(self):
        import tensorflow as tf

        def step(tokens, carried):
            state, (keys, mask, projected_keys) = carried
            log_probs, state, weights = self._step(tf.constant(tokens, tf.int32), state, keys, mask, projected_keys)
            log_probs = tf.cast(log_probs, tf.float32) + self._forbidden
            return log_probs, (state, (keys, mask, projected_keys)), weights

        return step

    def decode(self, id_rows: list[list[int]], method: str = "greedy", beam: int = 4, temperature: float = 1.0,
               seed: int | None = None, alpha: float = 1.0, max_len: int | None = None):
        from trainers.common import decoding

        max_len = max_len or self.max_target_len
        start = self._start(id_rows)
        common = dict(start_id=self.target_vocab.start, end_id=self.target_vocab.end, max_len=max_len)
        if method == "greedy":
            return decoding.greedy(self._step_fn(), start, rows=len(id_rows), **common)
        if method == "sample":
            return decoding.sample(self._step_fn(), start, rows=len(id_rows), temperature=temperature, seed=seed,
                                   **common)
        if method == "beam":
            if len(id_rows) != 1:
                raise ValueError("beam search decodes one sentence at a time")
            return decoding.beam_search(self._step_fn(), start, beam_width=beam, alpha=alpha, **common)
        raise ValueError(f"unknown decoding method {method!r}: use greedy, sample or beam")

    def translate(self, text: str, method: str = "greedy", beam: int = 4, temperature: float = 1.0,
                  seed: int | None = None, alpha: float = 1.0) -> dict:
        """One sentence -> {translation, tokens, display_tokens, source_tokens, attention, score, method, n_best,
        unknown_words}."""
        from trainers.nmt.data import detokenize, display_token

        if method == "beam" and not 1 <= int(beam) <= MAX_BEAM:
            raise TranslationInputError(f"The beam width must be between 1 and {MAX_BEAM}, got {beam}.")
        if method == "sample" and not 0 <= float(temperature) <= 5:
            raise TranslationInputError(f"The temperature must be between 0 and 5, got {temperature}.")
        tokens, ids = self.prepare(text)
        result = self.decode([ids], method, beam=int(beam), temperature=float(temperature), seed=seed, alpha=alpha)
        hypotheses = result.hypotheses if method == "beam" else result
        best = hypotheses[0]
        words = self.target_vocab.decode(best.ids)
        return {
            "translation": detokenize(words, self.casing),
            "tokens": words,
            "display_tokens": [display_token(word, self.casing) for word in words],  # as written: names capitalised
            "source_tokens": [t if t in self.source_vocab.index else f"{t} (?)" for t in tokens],
            "attention": np.round(np.asarray(best.attention, np.float64), 4).tolist(),
            "score": round(best.score, 4),
            "log_prob": round(best.log_prob, 4),
            "method": method,
            "n_best": [{"translation": detokenize(self.target_vocab.decode(h.ids), self.casing),
                        "score": round(h.score, 4),
                        "log_prob": round(h.log_prob, 4)} for h in hypotheses] if method == "beam" else [],
            "unknown_words": self.unknown_words(tokens),
        }

    def translate_batch(self, texts: list[str], batch_size: int = 128) -> list[str]:
        """Greedy translations of many sentences (batched), as detokenised strings; for evaluation."""
        from trainers.nmt.data import detokenize, source_tokens

        outputs = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start: start + batch_size]
            rows = [self.source_vocab.encode(source_tokens(t))[: self.max_source_len] or [self.source_vocab.unk]
                    for t in chunk]
            for hypothesis in self.decode(rows, "greedy"):
                outputs.append(detokenize(self.target_vocab.decode(hypothesis.ids), self.casing))
        return outputs

    def translate_beam(self, texts: list[str], beam: int, alpha: float = 1.0) -> list[str]:
        from trainers.nmt.data import detokenize, source_tokens

        outputs = []
        for text in texts:
            ids = self.source_vocab.encode(source_tokens(text))[: self.max_source_len] or [self.source_vocab.unk]
            outputs.append(detokenize(self.target_vocab.decode(self.decode([ids], "beam", beam=beam, alpha=alpha).ids),
                                      self.casing))
        return outputs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("text", help="the Spanish sentence")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="checkpoint folder")
    parser.add_argument("--beam", type=int, default=0, help="beam width (0 or 1: greedy)")
    parser.add_argument("--temperature", type=float, default=0.0, help="sample at this temperature (0: off)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print translation, tokens, attention and score")
    args = parser.parse_args(argv)
    if args.beam and args.temperature:
        print("error: choose either --beam or --temperature, not both", file=sys.stderr)
        raise SystemExit(2)
    from trainers.common.checkpoint import CheckpointError

    try:
        translator = Translator.load(Path(args.checkpoint))
        method = "beam" if args.beam > 1 else "sample" if args.temperature > 0 else "greedy"
        result = translator.translate(args.text, method, beam=args.beam, temperature=args.temperature, seed=args.seed)
    except (TranslationInputError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(result["translation"])


if __name__ == "__main__":
    main()
