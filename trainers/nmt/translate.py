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
import re
import sys
from pathlib import Path

import numpy as np

from trainers.common import checkpoint

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "nmt"
MAX_BEAM = 10
SOURCE_WIDTHS = (16, 32)  # greedy search pads a source to the first that holds it, else to max_source_len


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
    reads a servable folder (model, subword model and casing.json).

    Every input has pieces (subwords, or bytes for characters never seen), so no input is refused for unknown
    words and no output contains `<unk>`; `domain` is the style asked for: "everyday" (the app) or "bible"."""

    def __init__(self, model, tokenizer, casing: dict[str, str] | None = None):
        import tensorflow as tf

        self.model = model
        self.casing = casing or {}  # how names and the like are written (casing.json); the model itself is lower-case
        self.tokenizer = tokenizer
        self.max_source_len = model.config.max_source_len
        self.max_target_len = model.config.max_target_len
        self._encode = tf.function(lambda source: model.encode(source, training=False), reduce_retracing=True)
        self._step = tf.function(model.decode_step, reduce_retracing=True)
        # <pad>, <start>, <unk> and the domain tags are never outputs: forbidding them keeps ids, tokens and
        # attention rows aligned and keeps <unk> out of every translation.
        forbidden = np.zeros(tokenizer.size, np.float32)
        forbidden[tokenizer.never_written] = -1e9
        self._forbidden = tf.constant(forbidden)
        # A piece that continues a word with letters ("s", "ar") is never written twice in a row: an undertrained
        # decoder otherwise loops on one ("commitsssss"), and real words almost never need it.
        pieces = tokenizer.pieces(range(tokenizer.size))
        self._no_repeat = tf.constant([-1e9 if piece.isalpha() else 0.0 for piece in pieces], tf.float32)

    @classmethod
    def load(cls, folder: Path) -> "Translator":
        from trainers.nmt import model
        from trainers.nmt.data import CASING_FILE

        casing_path = Path(folder) / CASING_FILE
        casing = checkpoint.read_json(casing_path) if casing_path.is_file() else {}
        return cls(*model.load(Path(folder)), casing=casing)

    # ---- input ----

    def source_ids(self, text: str, domain: str = "everyday") -> list[int]:
        """The encoder's ids for a text that fits (the domain tag, then at most max_source_len - 1 pieces)."""
        from trainers.nmt.data import source_text

        return self.tokenizer.tagged(source_text(text), domain)[: self.max_source_len]

    def fits(self, text: str, domain: str = "everyday") -> bool:
        from trainers.nmt.data import source_text

        return len(self.tokenizer.tagged(source_text(text), domain)) <= self.max_source_len

    def parts(self, text: str, domain: str = "everyday") -> list[str]:
        """`text` cut into parts the model reads whole: at sentence punctuation (. ; : ? !), then at commas, then
        into halves by words, as far as needed. A text that fits is one part."""
        from trainers.nmt.data import split_segments

        if self.fits(text, domain):
            return [text]
        for pieces in (split_segments(text), re.split(r"(?<=,)\s+", text.strip())):
            if len(pieces) > 1:
                return [part for piece in pieces for part in self.parts(piece, domain)]
        words = text.split()
        if len(words) < 2:  # one enormous "word": cut it by characters
            middle = len(text) // 2
            return self.parts(text[:middle], domain) + self.parts(text[middle:], domain)
        middle = len(words) // 2
        return self.parts(" ".join(words[:middle]), domain) + self.parts(" ".join(words[middle:]), domain)

    def prepare(self, text: str, domain: str = "everyday") -> list[str]:
        """The parts to translate (see `parts`); raises TranslationInputError with a sentence for input that
        cannot be translated (empty, or no letter or digit at all). Long input is never refused: it is cut."""
        from trainers.nmt.data import has_words

        if text is None or not str(text).strip():
            raise TranslationInputError("Type a Spanish sentence to translate.")
        if not has_words(text):
            raise TranslationInputError("The input has no words (only punctuation or symbols); type a Spanish "
                                        "sentence.")
        return [part for part in self.parts(str(text), domain) if part.strip()]

    def english(self, ids, source: str = "") -> str:
        """Output ids as a written English sentence (case restored, names from `source` kept as written)."""
        from trainers.nmt.subword import restore_case

        return restore_case(self.tokenizer.decode(ids), self.casing, source)

    # ---- decoding ----

    def _start(self, id_rows: list[list[int]], width: int | None = None):
        import tensorflow as tf

        width = width or max(len(ids) for ids in id_rows)
        source = np.zeros((len(id_rows), width), np.int32)
        for row, ids in enumerate(id_rows):
            source[row, : len(ids)] = ids
        keys, mask, state, projected_keys = self._encode(tf.constant(source))
        return state, (keys, mask, projected_keys)

    def source_width(self, length: int) -> int:
        """The padded width of a source of `length` pieces in greedy search: the first of SOURCE_WIDTHS (then
        max_source_len) that holds it. The attention's softmax rounds a row differently at another width even
        where the padding is masked, so a sentence is always read at the same width, alone or batched."""
        return next((width for width in SOURCE_WIDTHS if length <= width < self.max_source_len), self.max_source_len)

    def _step_fn(self):
        import tensorflow as tf

        def step(tokens, carried):
            state, (keys, mask, projected_keys) = carried
            log_probs, state, weights = self._step(tf.constant(tokens, tf.int32), state, keys, mask, projected_keys)
            repeats = tf.one_hot(tokens, self.tokenizer.size) * self._no_repeat  # (rows, vocab)
            log_probs = tf.cast(log_probs, tf.float32) + self._forbidden + repeats
            return log_probs, (state, (keys, mask, projected_keys)), weights

        return step

    def _max_len(self, id_rows) -> int:
        """Output length cap: twice the longest source plus a margin, within the trained limit."""
        return min(self.max_target_len, 2 * max(len(ids) for ids in id_rows) + 8)

    def decode(self, id_rows: list[list[int]], method: str = "greedy", beam: int = 4, temperature: float = 1.0,
               seed: int | None = None, alpha: float = 1.0, max_len: int | None = None):
        """Greedy search decodes every row as it would alone: each row stops at its own length cap, sources are
        padded to a width that depends on their own length only (`source_width`; one batch per width), and at least
        decoding.MIN_ROWS rows are decoded (a lone sentence with a copy of itself), because at one row the CPU's
        matrix products round differently, while from two rows on a row's numbers do not depend on the other rows. So a
        sentence gets the same words, scores and attention alone or in any batch (tests/test_batching.py).
        Sampling and beam search decode one sentence, unpadded, as before."""
        from trainers.common import decoding

        if method == "greedy":
            hypotheses = [None] * len(id_rows)
            widths = [self.source_width(len(ids)) for ids in id_rows]
            for width in sorted(set(widths)):  # one batch per source width
                rows = decoding.padded_rows([row for row, row_width in enumerate(widths) if row_width == width])
                caps = [max_len or self._max_len([id_rows[row]]) for row in rows]
                decoded = decoding.greedy(self._step_fn(), self._start([id_rows[row] for row in rows], width),
                                          self.tokenizer.start, self.tokenizer.end, max(caps), rows=len(rows),
                                          max_lens=caps)
                for row, hypothesis in zip(rows, decoded):
                    hypotheses[row] = hypothesis
            return hypotheses
        max_len = max_len or self._max_len(id_rows)
        start = self._start(id_rows)
        common = dict(start_id=self.tokenizer.start, end_id=self.tokenizer.end, max_len=max_len)
        if method == "sample":
            return decoding.sample(self._step_fn(), start, rows=len(id_rows), temperature=temperature, seed=seed,
                                   **common)
        if method == "beam":
            if len(id_rows) != 1:
                raise ValueError("beam search decodes one sentence at a time")
            return decoding.beam_search(self._step_fn(), start, beam_width=beam, alpha=alpha, **common)
        raise ValueError(f"unknown decoding method {method!r}: use greedy, sample or beam")

    def translate(self, text: str, method: str = "greedy", beam: int = 4, temperature: float = 1.0,
                  seed: int | None = None, alpha: float = 1.0, domain: str = "everyday") -> dict:
        """One sentence -> {translation, tokens, display_tokens, source_tokens, attention, score, method, n_best,
        unknown_words}; tokens are the English subword pieces, source_tokens the domain tag and Spanish pieces
        (one attention column each); unknown_words is always empty (kept for callers of the word model)."""
        if method == "beam" and not 1 <= int(beam) <= MAX_BEAM:
            raise TranslationInputError(f"The beam width must be between 1 and {MAX_BEAM}, got {beam}.")
        if method == "sample" and not 0 <= float(temperature) <= 5:
            raise TranslationInputError(f"The temperature must be between 0 and 5, got {temperature}.")
        if method == "greedy":
            return self._joined_parts(self._greedy_parts([(part, domain) for part in self.prepare(text, domain)]),
                                      method)
        return self._joined_parts([self._translate_part(part, method, int(beam), float(temperature), seed, alpha,
                                                        domain) for part in self.prepare(text, domain)], method)

    def translate_many(self, requests: list[dict]) -> list:
        """Many `translate` calls at once (the app's batcher, or a Ray Serve batch): each request is a dict of
        `translate`'s keyword arguments, and the results come back in order, the same as `translate` gives each
        alone. Every part of every greedy request is decoded in one batch; beam search and sampling are
        translated one request after another. A request that cannot be translated gets its
        TranslationInputError in its place, and the others are still answered."""
        results: list = [None] * len(requests)
        greedy = []  # (index, parts, domain) of each greedy request
        for index, request in enumerate(requests):
            request = {"method": "greedy", **request}
            try:
                if request["method"] == "greedy":
                    domain = request.get("domain", "everyday")
                    greedy.append((index, self.prepare(request["text"], domain), domain))
                else:
                    results[index] = self.translate(**request)
            except TranslationInputError as error:
                results[index] = error
        translated = iter(self._greedy_parts([(part, domain) for _, parts, domain in greedy for part in parts]))
        for index, parts, _ in greedy:
            results[index] = self._joined_parts([next(translated) for _ in parts], "greedy")
        return results

    def _greedy_parts(self, parts: list[tuple[str, str]]) -> list[dict]:
        """Part results for (text, domain) pairs, decoded greedily in one batch."""
        if not parts:
            return []
        id_rows = [self.source_ids(text, domain) for text, domain in parts]
        return [self._part_result(text, ids, [hypothesis], "greedy")
                for (text, _), ids, hypothesis in zip(parts, id_rows, self.decode(id_rows, "greedy"))]

    def _joined_parts(self, parts: list[dict], method: str) -> dict:
        """One result from the results of a text's parts (a text that fits is one part)."""
        if len(parts) == 1:
            return parts[0]
        # A long input, translated part by part: the parts' outputs joined, attention block by block.
        columns = sum(len(part["source_tokens"]) for part in parts)
        attention, offset = [], 0
        for part in parts:
            for row in part["attention"]:
                attention.append([0.0] * offset + row + [0.0] * (columns - offset - len(row)))
            offset += len(part["source_tokens"])
        joined = " ".join(part["translation"] for part in parts)
        score = round(float(np.mean([part["score"] for part in parts])), 4)
        log_prob = round(sum(part["log_prob"] for part in parts), 4)
        return {"translation": joined, "tokens": [t for part in parts for t in part["tokens"]],
                "display_tokens": [t for part in parts for t in part["display_tokens"]],
                "source_tokens": [t for part in parts for t in part["source_tokens"]], "attention": attention,
                "score": score, "log_prob": log_prob, "method": method, "parts": len(parts),
                "n_best": [{"translation": joined, "score": score, "log_prob": log_prob}] if method == "beam" else [],
                "unknown_words": []}

    def _translate_part(self, text: str, method: str, beam: int, temperature: float, seed, alpha: float,
                        domain: str) -> dict:
        ids = self.source_ids(text, domain)
        result = self.decode([ids], method, beam=beam, temperature=temperature, seed=seed, alpha=alpha)
        return self._part_result(text, ids, result.hypotheses if method == "beam" else result, method)

    def _part_result(self, text: str, ids: list[int], hypotheses, method: str) -> dict:
        best = hypotheses[0]
        pieces = self.tokenizer.pieces(best.ids)
        attention = np.asarray(best.attention, np.float64)[:, : len(ids)]  # (outputs, src_len): no padding columns
        return {
            "translation": self.english(best.ids, text),
            "tokens": pieces,
            "display_tokens": pieces,
            "source_tokens": self.tokenizer.pieces(ids),
            "attention": np.round(attention, 4).tolist()[: len(pieces)],
            "score": round(best.score, 4),
            "log_prob": round(best.log_prob, 4),
            "method": method,
            "n_best": [{"translation": self.english(h.ids, text), "score": round(h.score, 4),
                        "log_prob": round(h.log_prob, 4)} for h in hypotheses] if method == "beam" else [],
            "unknown_words": [],
        }

    def _joined(self, texts: list[str], translate_parts, domain: str) -> list[str]:
        """Translations of `texts`, each cut into parts (see `parts`) that `translate_parts` translates."""
        cut = [self.parts(text, domain) if text and text.strip() else [text or ""] for text in texts]
        outputs = iter(translate_parts([part for parts in cut for part in parts]))
        return [" ".join(next(outputs) for _ in parts) for parts in cut]

    def translate_batch(self, texts: list[str], batch_size: int = 128, domain: str = "everyday") -> list[str]:
        """Greedy translations of many sentences (batched), as written strings; for evaluation."""
        def greedy(parts):
            outputs = []
            for start in range(0, len(parts), batch_size):
                chunk = parts[start: start + batch_size]
                hypotheses = self.decode([self.source_ids(t, domain) for t in chunk], "greedy")
                outputs.extend(self.english(hypothesis.ids, text) for text, hypothesis in zip(chunk, hypotheses))
            return outputs

        return self._joined(texts, greedy, domain)

    def translate_beam(self, texts: list[str], beam: int, alpha: float = 1.0, domain: str = "everyday") -> list[str]:
        def beams(parts):
            return [self.english(self.decode([self.source_ids(t, domain)], "beam", beam=beam, alpha=alpha).ids, t)
                    for t in parts]

        return self._joined(texts, beams, domain)


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
    from trainers.common.threads import use_serving_threads

    use_serving_threads()  # one thread per op, as the app: the same seed gives the app's answer

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
