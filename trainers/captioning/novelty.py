"""How unlike the training pictures a picture is: the distance of its features to the training set's.

A picture's 49 encoder feature vectors are averaged and scaled to unit length; the training pictures' are
summarised by k-means centroids (64 by default, float16: ~130 kB in the checkpoint). A picture's *distance* is
one minus the cosine similarity to its nearest centroid. The *threshold* is the 99th percentile of the distances
of the held-out validation pictures (composed scenes and photo-like pictures on held-out backgrounds), so about
one validation picture in a hundred lies beyond it; a picture beyond it is unlike anything the captioner was
trained on, and the Caption tab says so beside the caption. Nothing here is fitted on the real-photo evaluation
set (`realphotos.py` only reports how many of its photos lie beyond the threshold).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NOVELTY_FILE = "novelty.npz"
PERCENTILE = 99.0


def pooled(features: np.ndarray) -> np.ndarray:
    """(batch, locations, depth) -> (batch, depth) float32: the mean over locations, unit length."""
    means = np.asarray(features, np.float32).mean(axis=1)
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-8)


class NoveltyIndex:
    def __init__(self, centroids: np.ndarray, threshold: float, percentile: float = PERCENTILE):
        self.centroids = np.asarray(centroids, np.float32)
        self.threshold = float(threshold)
        self.percentile = float(percentile)

    @classmethod
    def fit(cls, train_features, held_out_features: list, clusters: int = 64, seed: int = 0, iterations: int = 12,
            chunk: int = 2048) -> "NoveltyIndex":
        """k-means on the pooled training features; the threshold from the held-out pictures' distances."""
        rng = np.random.default_rng([seed, 31])
        points = np.concatenate([pooled(train_features[start:start + chunk])
                                 for start in range(0, len(train_features), chunk)])
        clusters = max(1, min(clusters, len(points)))
        centroids = points[rng.choice(len(points), clusters, replace=False)]
        for _ in range(iterations):
            nearest = np.argmax(points @ centroids.T, axis=1)
            for cluster in range(clusters):
                members = points[nearest == cluster]
                if len(members):
                    mean = members.mean(axis=0)
                    centroids[cluster] = mean / max(float(np.linalg.norm(mean)), 1e-8)
        index = cls(centroids, 0.0)
        distances = np.concatenate([index.distances(np.asarray(features)) for features in held_out_features
                                    if len(features)]) if held_out_features else index.distances(train_features)
        index.threshold = float(np.percentile(distances, PERCENTILE))
        return index

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(batch, locations, depth) -> (batch,) distances to the nearest training centroid (0 = the same)."""
        return 1.0 - np.max(pooled(features) @ self.centroids.T, axis=1)

    def judge(self, features: np.ndarray) -> dict:
        """One picture's features (locations, depth) -> distance, threshold, and whether it is unfamiliar."""
        distance = float(self.distances(features[None])[0])
        return {"distance": round(distance, 4), "threshold": round(self.threshold, 4),
                "unfamiliar": distance > self.threshold}

    def save(self, path: Path) -> None:
        np.savez(Path(path), centroids=self.centroids.astype(np.float16), threshold=np.float32(self.threshold),
                 percentile=np.float32(self.percentile))

    @classmethod
    def load(cls, path: Path) -> "NoveltyIndex | None":
        path = Path(path)
        if not path.is_file():
            return None
        stored = np.load(path)
        return cls(stored["centroids"].astype(np.float32), float(stored["threshold"]), float(stored["percentile"]))
