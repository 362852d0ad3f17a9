"""The Translate tab: the `translate` endpoint through gradio_client, clear errors, and a real browser."""

from __future__ import annotations

import pytest

from tests.conftest import screenshot
from tests.tiny.nmt import PAIRS


def test_translate_endpoint_returns_translation_nbest_and_attention(client):
    english, plot, n_best, raw = client.predict("¿Todavía están en casa?", "Beam search", 3, 0.8, 0,
                                                api_name="/translate")
    assert isinstance(english, str) and english
    # The style tag, then the subword pieces of the folded Spanish (one attention column each).
    assert raw["source_tokens"][0] == "<everyday>"
    assert "".join(raw["source_tokens"][1:]).replace("\u2581", " ").strip() == "todavia estan en casa?"
    assert len(raw["n_best"]) == 3
    scores = [entry["score"] for entry in raw["n_best"]]
    assert scores == sorted(scores, reverse=True)
    table = n_best.get("value", n_best) if isinstance(n_best, dict) else n_best
    rows = table["data"] if isinstance(table, dict) else table
    assert [row[1] for row in rows] == [entry["translation"] or "(empty)" for entry in raw["n_best"]], n_best
    assert len(raw["attention"]) == len(raw["tokens"])
    for row in raw["attention"]:
        assert len(row) == len(raw["source_tokens"]) and abs(sum(row) - 1.0) < 1e-3
    assert plot is not None


def test_attention_heatmap_labels_output_words_as_written_and_shows_every_weight():
    from html.parser import HTMLParser

    from playground.translate_tab import CSS, SHOWN_WEIGHT, attention_html

    result = {"tokens": ["and", "god", "said", "."], "display_tokens": ["and", "God", "said", "."],
              "source_tokens": ["<bible>", "y", "dios", "dijo"],
              "attention": [[0.0, 0.8, 0.1, 0.1], [0.0, 0.1, 0.8, 0.1], [0.0, 0.1, 0.1, 0.8], [0.05, 0.2, 0.2, 0.55]]}

    class Cells(HTMLParser):  # (tag, attributes, text) of every header and cell, in order
        def __init__(self):
            super().__init__()
            self.cells, self.open = [], None

        def handle_starttag(self, tag, attrs):
            if tag in ("th", "td"):
                self.open = [tag, dict(attrs), ""]

        def handle_data(self, data):
            if self.open is not None:
                self.open[2] += data

        def handle_endtag(self, tag):
            if tag in ("th", "td") and self.open is not None:
                self.cells.append(tuple(self.open))
                self.open = None

    parser = Cells()
    parser.feed(attention_html(result))
    headers = [text for tag, _, text in parser.cells if tag == "th"]
    assert headers == ["", "<bible>", "y", "dios", "dijo", "and", "God", "said", "."]  # escaped, and read back
    cells = [(attributes, text) for tag, attributes, text in parser.cells if tag == "td"]
    weights = [weight for row in result["attention"] for weight in row]
    # Every weight on hover, except those under 0.0005 (0.000): those cells are bare, in the CSS's colour
    assert [float(attributes.get("title", 0)) for attributes, _ in cells] == pytest.approx(weights, abs=5e-4)
    assert [bool(attributes) for attributes, _ in cells] == [w >= 5e-4 for w in weights]
    assert [text for _, text in cells] == [f"{w:.2f}" if w >= SHOWN_WEIGHT else "" for w in weights]
    faint, brightest = cells[12][0]["style"], cells[1][0]["style"]  # weight 0.05 and 0.8
    assert faint != brightest and "#000004" not in faint
    assert "background: #000004" in CSS  # magma's first colour, for the bare cells


def test_a_long_inputs_heatmap_stays_small():
    """A long input is translated part by part, its attention block by block: the cells outside the blocks are
    bare. 12 parts of 12 x 15 pieces (about a 600-character input's size): 1.59 MB when every cell had a style."""
    from playground.translate_tab import attention_html

    rows, columns, parts = 12, 15, 12
    attention = [[0.0] * (part * columns) + [1.0 / columns] * columns + [0.0] * ((parts - part - 1) * columns)
                 for part in range(parts) for _ in range(rows)]
    page = attention_html({"tokens": ["w"] * rows * parts, "source_tokens": ["p"] * columns * parts,
                           "attention": attention})
    assert page.count("<td") == rows * parts * columns * parts
    assert len(page) < 400_000  # 327 kB: 9 bytes a bare cell


def test_attention_heatmap_escapes_what_the_user_typed():
    from playground.translate_tab import attention_html

    page = attention_html({"tokens": ["x"], "source_tokens": ["<script>alert(1)</script>", "&"],
                           "attention": [[0.5, 0.5]]})
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp;" in page


def test_greedy_equals_beam_width_one_through_the_api(client):
    greedy = client.predict("El señor es mi pastor.", "Greedy", 5, 0.8, 0, api_name="/translate")[3]
    beam = client.predict("el senor es mi PASTOR.", "Beam search", 1, 0.8, 0, api_name="/translate")[3]
    assert greedy["tokens"] == beam["tokens"]


@pytest.mark.parametrize("text, message", [
    ("   ", "Type a Spanish sentence"),
    ("¿¡!?", "no words"),
    ("😀🐶✨", "no words"),
    ("a" * 700, "at most 600"),
])
def test_bad_input_gets_a_clear_sentence(client, text, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(text, "Greedy", 5, 0.8, 0, api_name="/translate")


@pytest.mark.parametrize("text", ["xyzzy plugh frobnicate", "hola", "2024 12 31", "Me llamo Zoë 😀", "casa " * 40])
def test_unknown_words_digits_and_names_are_translated_not_refused(client, text):
    english, _, _, raw = client.predict(text, "Beam search", 3, 0.8, 0, api_name="/translate")
    assert isinstance(english, str) and "<unk>" not in english and raw["unknown_words"] == []


def test_translate_tab_in_a_browser(page):
    page.get_by_role("tab", name="Translate").click()
    # Clicking a held-out example fills the Spanish box and its reference translations.
    page.get_by_text(PAIRS[2][0], exact=True).first.click()
    page.wait_for_function("() => document.querySelector('#nmt-spanish textarea').value.includes('pastor')",
                           timeout=20000)
    assert "shepherd" in page.locator("#nmt-references textarea").input_value()
    page.get_by_role("button", name="Translate", exact=True).click()
    page.locator("#nmt-attention table td").first.wait_for(timeout=60000)
    page.locator("#nmt-nbest").wait_for(state="visible", timeout=30000)
    screenshot(page, "translate_tab")
    # The n-best table lists the 5 beams (the default width), best first.
    page.wait_for_function("() => document.querySelector('#nmt-nbest').innerText.includes('5')", timeout=30000)
    raw_rows = page.locator("#nmt-nbest").inner_text()
    assert "rank" in raw_rows and "log p" in raw_rows
    # An empty input shows a readable error, not a stack trace.
    page.locator("#nmt-spanish textarea").fill("")
    page.get_by_role("button", name="Translate", exact=True).click()
    page.get_by_text("Type a Spanish sentence to translate.").first.wait_for(timeout=20000)
    screenshot(page, "translate_tab_error")
