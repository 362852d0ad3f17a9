"""The model-agnostic search functions of trainers.common.decoding, driven by small hand-made step functions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from trainers.common import decoding

START, END, VOCAB, SRC_LEN = 0, 1, 6, 3


def markov_step(table: np.ndarray):
    """A step function whose next-token distribution depends only on the previous token (a Markov chain).

    The state is a counter array (rows, 1) so that reordering by beam search is exercised too; the attention
    weights are a one-hot on (step % SRC_LEN) so the tests can check which rows were kept.
    """
    log_table = np.log(table)

    def step(tokens, state):
        counter = state["count"]
        weights = np.zeros((len(tokens), SRC_LEN), np.float32)
        weights[np.arange(len(tokens)), counter[:, 0] % SRC_LEN] = 1.0
        return log_table[np.asarray(tokens)], {"count": counter + 1}, weights

    return step


def random_table(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    table = rng.dirichlet(np.full(VOCAB, 0.6), size=VOCAB)  # (prev token, next token)
    table[:, START] = 1e-9  # the start token is never produced
    return table / table.sum(axis=1, keepdims=True)


def sequence_log_prob(table, ids, finished=True) -> float:
    log_prob, previous = 0.0, START
    for token in list(ids) + ([END] if finished else []):
        log_prob += np.log(table[previous, token])
        previous = token
    return log_prob


def initial_state():
    return {"count": np.zeros((1, 1), np.int64)}


@pytest.mark.parametrize("seed", range(5))
def test_beam_width_one_equals_greedy(seed):
    table = random_table(seed)
    step = markov_step(table)
    greedy = decoding.greedy(step, initial_state(), START, END, max_len=8)[0]
    beam = decoding.beam_search(step, initial_state(), START, END, beam_width=1, max_len=8)
    assert beam.ids == greedy.ids
    np.testing.assert_allclose(beam.best.log_prob, greedy.log_prob, rtol=1e-9)
    np.testing.assert_array_equal(beam.attention, greedy.attention)


@pytest.mark.parametrize("seed", range(5))
def test_beam_scores_sorted_and_true(seed):
    table = random_table(seed)
    result = decoding.beam_search(markov_step(table), initial_state(), START, END, beam_width=4, max_len=6,
                                  alpha=0.7)
    scores = [hypothesis.score for hypothesis in result.hypotheses]
    assert scores == sorted(scores, reverse=True)
    assert len(result.hypotheses) == 4
    for hypothesis in result.hypotheses:
        # The reported log-probability is the real probability of that output under the model.
        expected = sequence_log_prob(table, hypothesis.ids, hypothesis.finished)
        assert hypothesis.log_prob == pytest.approx(expected, rel=1e-9)
        length = len(hypothesis.ids) + (1 if hypothesis.finished else 0)
        assert hypothesis.score == pytest.approx(expected / length ** 0.7, rel=1e-9)
        assert hypothesis.attention.shape == (len(hypothesis.ids), SRC_LEN)
        # Step t attended to position t % SRC_LEN: the state was carried along the right beam.
        np.testing.assert_array_equal(hypothesis.attention.argmax(axis=1), np.arange(len(hypothesis.ids)) % SRC_LEN)
    ids, attention, score = result  # unpacks as the best hypothesis
    assert ids == result.best.ids and score == scores[0]


def test_wide_beam_finds_the_best_sequence_exhaustive_search_finds():
    table = random_table(11)
    max_len = 3
    best = max((ids for length in range(0, max_len) for ids in itertools.product(range(2, VOCAB), repeat=length)),
               key=lambda ids: sequence_log_prob(table, ids))
    result = decoding.beam_search(markov_step(table), initial_state(), START, END, beam_width=VOCAB ** max_len,
                                  max_len=max_len, alpha=0.0)
    finished = [h for h in result.hypotheses if h.finished]
    assert finished[0].log_prob == pytest.approx(sequence_log_prob(table, best))


def test_beam_search_beats_greedy_when_greedy_is_trapped():
    # Greedy takes token 2 (p=0.6) and then must pay 0.3; beam finds 3 (p=0.4) followed by END (p=1).
    table = np.full((VOCAB, VOCAB), 1e-6)
    table[START, 2], table[START, 3] = 0.6, 0.4
    table[2, END], table[2, 4] = 0.3, 0.7
    table[4, END] = 0.3
    table[4, 5] = 0.7
    table[5, END] = 1.0
    table[3, END] = 1.0
    table /= table.sum(axis=1, keepdims=True)
    step = markov_step(table)
    greedy = decoding.greedy(step, initial_state(), START, END, max_len=6)[0]
    beam = decoding.beam_search(step, initial_state(), START, END, beam_width=3, max_len=6, alpha=0.0)
    assert greedy.ids == [2, 4, 5]
    assert beam.ids == [3]
    assert beam.best.log_prob > greedy.log_prob


def test_greedy_is_batched_and_stops_at_end():
    table = random_table(3)
    step = markov_step(table)
    state = {"count": np.zeros((3, 1), np.int64)}
    results = decoding.greedy(step, state, START, END, max_len=5, rows=3)
    assert len(results) == 3
    assert all(r.ids == results[0].ids for r in results)  # identical rows give identical outputs
    assert all(END not in r.ids and len(r.ids) <= 5 for r in results)


def test_sampling_is_reproducible_and_temperature_zero_is_greedy():
    table = random_table(4)
    step = markov_step(table)
    state = {"count": np.zeros((8, 1), np.int64)}
    first = decoding.sample(step, state, START, END, max_len=6, rows=8, temperature=1.0, seed=5)
    again = decoding.sample(step, state, START, END, max_len=6, rows=8, temperature=1.0, seed=5)
    assert [h.ids for h in first] == [h.ids for h in again]
    assert len({tuple(h.ids) for h in first}) > 1  # real sampling: 8 rows do not all agree
    cold = decoding.sample(step, state, START, END, max_len=6, rows=8, temperature=0.0)
    greedy = decoding.greedy(step, state, START, END, max_len=6, rows=8)
    assert [h.ids for h in cold] == [h.ids for h in greedy]


def test_reorder_state_handles_nested_numpy_and_tensors():
    import tensorflow as tf

    state = (np.arange(6).reshape(3, 2), {"keys": tf.reshape(tf.range(6), (3, 2))}, None)
    picked = decoding.reorder_state(state, [2, 2, 0])
    np.testing.assert_array_equal(picked[0], [[4, 5], [4, 5], [0, 1]])
    assert isinstance(picked[1]["keys"], tf.Tensor)
    np.testing.assert_array_equal(picked[1]["keys"].numpy(), [[4, 5], [4, 5], [0, 1]])
    assert picked[2] is None


def test_bad_arguments_are_refused():
    step = markov_step(random_table(0))
    with pytest.raises(ValueError, match="beam width"):
        decoding.beam_search(step, initial_state(), START, END, beam_width=0)
    with pytest.raises(ValueError, match="max_len"):
        decoding.greedy(step, initial_state(), START, END, max_len=0)
    with pytest.raises(ValueError, match="temperature"):
        decoding.sample(step, initial_state(), START, END, max_len=3, temperature=-1)
