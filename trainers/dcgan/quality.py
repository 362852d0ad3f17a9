"""How good are the generated digits? The classifier's opinion, class shares, and a Fréchet distance.

- `classifier_confidence`: the mean, over generated digits, of the classifier's probability for its guess.
  A clear digit gets ~1.0; a blob between a 4 and a 9 gets ~0.5. `real_digits_confidence` is the same mean
  over the held-out real digits, for reference.
- `class_shares`: the share of each guessed digit. A generator that has collapsed onto a few modes makes few
  kinds of digits; every class should hold at least 4% (a fair share is 10%).
- `classifier_fid`: the Fréchet distance between Gaussians fitted to the classifier's penultimate-layer
  features of generated and of held-out real digits (FID, with a digit classifier instead of Inception), and
  `classifier_fid_floor`: the same distance between two halves of the real held-out digits, which is what
  sampling noise alone gives. Because the estimate grows as samples shrink, `classifier_fid_500` compares 500
  generated digits with a 500-digit real half, the same sizes as the floor.
"""

from __future__ import annotations

import numpy as np

MIN_CLASS_SHARE = 0.04
MIN_CONFIDENCE = 0.90
EVAL_SEED = 1234  # the latent vectors of the 1,000 evaluation digits: the same for every epoch and run
# Picking a run's best epoch uses other latent vectors and training digits as the reference, so that the reported
# figures (EVAL_SEED vs the held-out digits) are not the ones the pick was made on.
SELECTION_SEED = 4321
SELECTION_REFERENCE = 1000


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) between Gaussians fitted to two feature sets.

    Tr((S_a S_b)^1/2) is computed as the sum of square roots of the eigenvalues of S_a^1/2 S_b S_a^1/2, which is
    symmetric positive semi-definite, so only symmetric eigendecompositions are needed (no complex sqrtm).
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two (n, features) sets of at least 2 rows with equal widths, got {a.shape} and "
                         f"{b.shape}")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))  # (features, features), also for one feature
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T  # S_a^1/2
    middle = root_a @ cov_b @ root_a
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root
    return float(max(distance, 0.0))


def real_floor(judge, heldout_images: np.ndarray, heldout_labels: np.ndarray | None = None, seed: int = 0) -> float:
    """The Fréchet distance between two random halves of the held-out real digits (stratified by class)."""
    _, features = judge.outputs(heldout_images)
    first, second = halves(len(heldout_images), heldout_labels, seed)
    return frechet_distance(features[first], features[second])


def halves(count: int, labels: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random halves of range(count), each with half of every class when labels are given."""
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(count)
        return np.sort(order[: count // 2]), np.sort(order[count // 2:])
    first, second = [], []
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        first.append(members[: len(members) // 2])
        second.append(members[len(members) // 2:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def guess_figures(probabilities: np.ndarray) -> dict:
    """What the classifier makes of a set of digits, from its probabilities (n, 10): the mean confidence in its
    guesses and that mean's standard error, the share it is over 90% sure of, and the share of each guessed class."""
    confidence = probabilities.max(axis=1)
    count = max(len(confidence), 1)
    shares = np.bincount(probabilities.argmax(axis=1), minlength=10) / count
    return {"generated_digits": int(len(confidence)),
            "classifier_confidence": round(float(confidence.mean()), 4),
            "confidence_standard_error": round(float(confidence.std() / count ** 0.5), 4),
            "share_confident_over_0.9": round(float(np.mean(confidence > 0.9)), 4),
            "class_shares": {str(digit): round(float(share), 4) for digit, share in enumerate(shares)},
            "min_class_share": round(float(shares.min()), 4)}


def selection_reference(images: np.ndarray, labels: np.ndarray, count: int = SELECTION_REFERENCE,
                        seed: int = 0) -> np.ndarray:
    """Up to `count` training digits, the same number of each class (fixed seed): what epochs are picked on."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = max(count // max(len(classes), 1), 1)
    chosen = [rng.permutation(np.flatnonzero(labels == digit))[:per_class] for digit in classes]
    return images[np.sort(np.concatenate(chosen))]


def selection_figures(generated: np.ndarray, judge, reference: np.ndarray) -> dict:
    """The figures an epoch is picked on: confidence and class shares of `generated` (drawn from SELECTION_SEED)
    and the Fréchet distance to `reference` training digits. No held-out digit is involved."""
    probabilities, features = judge.outputs(generated)
    _, reference_features = judge.outputs(reference)
    judged = guess_figures(probabilities)
    return {"selection_confidence": judged["classifier_confidence"],
            "selection_min_class_share": judged["min_class_share"],
            "selection_fid": round(frechet_distance(features, reference_features), 3)}


def selection_score(figures: dict) -> tuple:
    """Higher is better: meeting the bar first, then a lower Fréchet distance to the training digits."""
    meets = (figures["selection_confidence"] >= MIN_CONFIDENCE
             and figures["selection_min_class_share"] >= MIN_CLASS_SHARE)
    return (int(meets), -figures["selection_fid"])


def assess(generated: np.ndarray, judge, heldout_images: np.ndarray, heldout_labels: np.ndarray | None = None,
           floor: float | None = None) -> dict:
    """All quality figures for generated digits (n, 28, 28, 1) in [-1, 1] against the held-out real ones."""
    probabilities, generated_features = judge.outputs(generated)
    real_probabilities, real_features = judge.outputs(heldout_images)
    judged = guess_figures(probabilities)
    first, second = halves(len(heldout_images), heldout_labels)
    if floor is None:
        floor = frechet_distance(real_features[first], real_features[second])
    half = min(len(second), len(generated_features))
    return {
        "generated_digits": judged["generated_digits"],
        "classifier_confidence": judged["classifier_confidence"],
        "real_digits_confidence": round(float(real_probabilities.max(axis=1).mean()), 4),
        "share_confident_over_0.9": judged["share_confident_over_0.9"],
        "class_shares": judged["class_shares"],
        "min_class_share": judged["min_class_share"],
        "classifier_fid": round(frechet_distance(generated_features, real_features), 3),
        "classifier_fid_500": round(frechet_distance(generated_features[:half], real_features[second]), 3),
        "classifier_fid_floor": round(float(floor), 3),
    }


def meets_bar(figures: dict) -> bool:
    return (figures["classifier_confidence"] >= MIN_CONFIDENCE and figures["min_class_share"] >= MIN_CLASS_SHARE)
