"""The Digits tab: the `generate_digits` and `latent_walk` endpoints, bad input, and the tab in a real browser."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.conftest import screenshot
from trainers.dcgan import images


def test_generate_digits_endpoint_draws_a_labelled_grid_of_the_requested_size(client):
    picture, shares, report = client.predict(7, 16, api_name="/generate_digits")
    with Image.open(picture) as grid:
        expected = images.labelled_grid(images.np.zeros((16, 28, 28), images.np.uint8), [0] * 16, [1.0] * 16)
        assert grid.size == expected.size  # 4 x 4 labelled tiles
    total = sum(entry["confidence"] for entry in shares["confidences"])
    assert total == pytest.approx(1.0, abs=1e-6) and len(shares["confidences"]) == 10
    assert "**16 digits**" in report and "mean confidence" in report


def test_same_seed_same_digits_through_the_api(client):
    first = client.predict(123, 9, api_name="/generate_digits")[0]
    second = client.predict(123, 9, api_name="/generate_digits")[0]
    other = client.predict(124, 9, api_name="/generate_digits")[0]
    pixels = [images.np.asarray(Image.open(path)) for path in (first, second, other)]
    assert images.np.array_equal(pixels[0], pixels[1])
    assert not images.np.array_equal(pixels[0], pixels[2])


@pytest.mark.parametrize("arguments, message", [
    ((7, 0), "Number of digits must be between 1 and 256, got 0"),
    ((7, 1000), "Number of digits must be between 1 and 256, got 1000"),
    ((-5, 4), "Seed must be between 0 and 4,294,967,295, got -5"),
])
def test_bad_requests_get_a_clear_sentence(client, arguments, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(*arguments, api_name="/generate_digits")


def test_latent_walk_endpoint_returns_a_gif_there_and_back_and_its_frames(client):
    gif, frames = client.predict(3, 11, 6, api_name="/latent_walk")
    assert images.gif_frame_count(gif) == 6 + 4
    assert len(frames) == 6
    captions = [frame["caption"] for frame in frames]
    assert all(caption[0].isdigit() and caption.endswith("%") for caption in captions)


def test_digits_tab_in_the_browser(page):
    page.get_by_role("tab", name="Digits").click()
    page.get_by_role("button", name="Generate digits").click()
    page.wait_for_selector("#digits-grid img", timeout=60000)
    page.wait_for_selector("text=mean confidence", timeout=60000)
    assert page.locator("#training-gif img").count() == 1
    assert "real-vs-real floor" in page.locator("#digits-scores").inner_text()
    page.get_by_role("button", name="Walk").click()
    page.wait_for_selector("#latent-walk img", timeout=60000)
    page.wait_for_selector("#latent-frames img", timeout=60000)
    screenshot(page, "digits_tab")
    seed = page.locator("#digits-seed input")
    before = seed.input_value()
    page.get_by_role("button", name="New seed").click()  # the Text tab's twin is hidden, so not a match
    page.wait_for_function(f"() => document.querySelector('#digits-seed input').value !== '{before}'",
                           timeout=10000)


def test_the_app_serves_only_named_endpoints(client):
    # Page-load refreshes (the progress GIF, the scores) and other internal events are not part of the API.
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate_digits", "/latent_walk", "/generate_text", "/translate", "/caption"} <= names
    assert not [name for name in names if name.startswith("/lambda")], names


def test_the_scores_say_which_generator_draws_the_digits():
    """A distilled checkpoint's metrics.json names its served generator; the tab's scores repeat it with its size,
    and a checkpoint that does not say is described as before."""
    from playground.digits_tab import scores_markdown

    metrics = {"classifier_confidence": 0.9012, "epochs": 250, "wall_time_seconds": 600.0, "generated_digits": 1000,
               "data": {"train_digits": 9000, "heldout_digits": 1000, "source": "offline"},
               "served_generator": "a 128-filter generator distilled from the 256-filter one",
               "parameters": {"generator": 524417}}
    text = scores_markdown(metrics)
    assert "The generator in use (524,417 parameters): a 128-filter generator distilled from the 256-filter one." \
        in text
    assert "0.901" in text
    assert "generator in use" not in scores_markdown({k: v for k, v in metrics.items() if k != "served_generator"})
