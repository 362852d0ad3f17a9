"""The everyday Spanish–English readers (gettext catalogues, Tux Paint, Asterisk prompts, FreeDict) and their
split by source group, on tiny fixtures written here (never the Debian packages themselves or the network)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from trainers.nmt import data, everyday


def write_mo(path: Path, messages: dict[str, str]) -> Path:
    """A GNU .mo catalogue (little-endian, no hash table) with an empty header entry and `messages`."""
    entries = sorted({"": "Content-Type: text/plain; charset=UTF-8\n", **messages}.items())
    ids = [key.encode() for key, _ in entries]
    strs = [value.encode() for _, value in entries]
    count = len(entries)
    table_start = 28
    data_start = table_start + 16 * count
    original, translated, blob = [], [], b""
    for text in ids:
        original.append((len(text), data_start + len(blob)))
        blob += text + b"\0"
    for text in strs:
        translated.append((len(text), data_start + len(blob)))
        blob += text + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, table_start, table_start + 8 * count, 0, 0)
    tables = b"".join(struct.pack("<2I", *pair) for pair in original + translated)
    path.write_bytes(header + tables + blob)
    return path


def dictd_number(value: int) -> str:
    digits = ""
    while True:
        digits = everyday._B64[value % 64] + digits
        value //= 64
        if not value:
            return digits


def write_dictd(folder: Path, direction: str, entries: list[tuple[str, str]]) -> None:
    body, index = b"", []
    for headword, text in [("00databaseinfo", "about")] + entries:
        chunk = text.encode()
        index.append(f"{headword}\t{dictd_number(len(body))}\t{dictd_number(len(chunk))}")
        body += chunk
    (folder / f"freedict-{direction}.index").write_text("\n".join(index) + "\n", encoding="utf-8")
    (folder / f"freedict-{direction}.dict.dz").write_bytes(gzip.compress(body))


@pytest.fixture()
def roots(tmp_path):
    locale = tmp_path / "locale"
    locale.mkdir()
    write_mo(locale / "gtk30.mo", {"_Open File": "_Abrir archivo", "Could not save the picture": "No se pudo "
                                   "guardar la imagen", "%s is not a file": "%s no es un archivo",
                                   "Use <b>bold</b> text": "Usar texto <b>negrita</b>", "OK": "Aceptar",
                                   "menu\x04Recent Files": "Archivos recientes", "--help shows help": "--help"})
    write_mo(locale / "gtk20-properties.mo", {"Show the hidden files": "Mostrar los archivos ocultos"})
    write_mo(locale / "gas.mo", {"bad relocation type": "tipo de reubicación erróneo"})  # a technical catalogue
    stamps = tmp_path / "stamps"
    (stamps / "animals" / "dogs").mkdir(parents=True)
    (stamps / "food").mkdir()
    (stamps / "animals" / "dogs" / "puppy.txt").write_text("A small puppy.\nca.utf8=Un gosset.\nes.utf8=Un "
                                                           "cachorro pequeño.\n", encoding="utf-8")
    (stamps / "food" / "bread.txt").write_text("A loaf of bread.\nes.utf8=Una barra de pan.\n", encoding="utf-8")
    (stamps / "food" / "cheese.txt").write_text("Some cheese.\nfr.utf8=Du fromage.\n", encoding="utf-8")  # no es
    docs = tmp_path / "doc"
    for language, lines in (("es", ["; comment", "vm-goodbye: Adiós.", "vm-password: Contraseña",
                                    "beep: [tono simple]", "conf-locked: La conferencia está bloqueada."]),
                            ("en", ["vm-goodbye: Goodbye.", "vm-password: Password.", "beep: [a beep]",
                                    "conf-locked: The conference is locked.", "only-en: Only in English."])):
        folder = docs / f"asterisk-core-sounds-{language}"
        folder.mkdir(parents=True)
        (folder / f"core-sounds-{language}.txt.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    dictd = tmp_path / "dictd"
    dictd.mkdir()
    write_dictd(dictd, "spa-eng", [("perro", "perro /pˈero/\ndog\n"), ("mesa", "mesa /mˈesa/\ntable, desk\n"),
                                   ("sembrar", "sembrar /sembɾˈaɾ/\n1. sow\n")])
    write_dictd(dictd, "eng-spa", [("book", "book /buk/\nlibro\n")])
    return {"locale_dir": locale, "tuxpaint_dir": stamps, "asterisk_docs": docs, "dictd_dir": dictd}


def test_gettext_keeps_plain_interface_sentences_and_drops_technical_ones(roots):
    pairs = everyday.read_gettext(roots["locale_dir"])
    found = {(p["english"], p["spanish"]) for p in pairs}
    assert found == {("Open File", "Abrir archivo"), ("Could not save the picture", "No se pudo guardar la imagen"),
                     ("Recent Files", "Archivos recientes"), ("Show the hidden files", "Mostrar los archivos ocultos")}
    assert {p["group"] for p in pairs} == {"gettext:gtk"}  # gtk20 and gtk30 are one family; gas is left out


@pytest.mark.parametrize("text", ["%d files", "Press <Ctrl>", "C:\\path", "/usr/bin", "use --force", "GtkWidget",
                                  "Use GPG keys", "x86_64 build", "file.txt saved", "a=b", "see https://x.org",
                                  "two\nlines", "12 34"])
def test_technical_strings_are_refused(text):
    assert everyday.clean_interface_string(text) is None


def test_catalogue_families():
    assert everyday.catalogue_family("gtk30-properties.mo") == "gtk"
    assert everyday.catalogue_family("pg_dump-15.mo") == "pg_dump"
    assert everyday.catalogue_family("iso_3166-1.mo") == "iso"
    assert everyday.catalogue_family("wget-gnulib.mo") == "wget"


def test_tuxpaint_reads_english_and_spanish_lines_grouped_by_folder(roots):
    pairs = everyday.read_tuxpaint(roots["tuxpaint_dir"])
    assert [(p["group"], p["english"], p["spanish"]) for p in pairs] == [
        ("tuxpaint:animals/dogs", "A small puppy.", "Un cachorro pequeño."),
        ("tuxpaint:food", "A loaf of bread.", "Una barra de pan.")]


def test_asterisk_prompts_are_aligned_by_id_without_sound_descriptions(roots):
    pairs = everyday.read_asterisk(roots["asterisk_docs"])
    assert [(p["key"], p["group"], p["english"], p["spanish"]) for p in pairs] == [
        ("conf-locked", "asterisk:conf", "The conference is locked.", "La conferencia está bloqueada."),
        ("vm-goodbye", "asterisk:vm", "Goodbye.", "Adiós."),
        ("vm-password", "asterisk:vm", "Password.", "Contraseña")]
    assert everyday.read_asterisk(roots["asterisk_docs"] / "missing") == []


def test_freedict_reads_both_directions_as_word_pairs(roots):
    pairs = {(p["english"], p["spanish"]) for p in everyday.read_freedict(roots["dictd_dir"])}
    assert pairs == {("dog", "perro"), ("table", "mesa"), ("desk", "mesa"), ("sow", "sembrar"), ("book", "libro")}


def test_read_all_gives_every_source_and_empty_lists_for_missing_ones(roots, tmp_path):
    found = everyday.read_all(**roots)
    assert set(found) == set(everyday.SOURCES) and all(found.values())
    empty = everyday.read_all(tmp_path / "no", tmp_path / "no", tmp_path / "no", tmp_path / "no")
    assert empty == {source: [] for source in everyday.SOURCES}


def pair(source, group, spanish, english):
    return {"source": source, "group": group, "spanish": spanish, "english": english, "key": spanish}


def test_split_holds_out_whole_groups_and_removes_repeats_of_held_out_text():
    pairs = [pair("tuxpaint", f"tuxpaint:folder{g}", f"cosa {g} {i}", f"thing {g} {i}")
             for g in range(40) for i in range(3)]
    pairs += [pair("freedict", "freedict", f"palabra {i}", f"word {i}") for i in range(20)]
    test_group = next(f"tuxpaint:folder{g}" for g in range(40) if everyday.group_slot(f"tuxpaint:folder{g}", 5) == 0)
    pairs.append(pair("tuxpaint", "tuxpaint:elsewhere", "cosa " + test_group[-1] + " 0", "a repeat"))
    train, validation, test = everyday.split_groups(pairs, every={"tuxpaint": 5})
    groups = lambda chosen: {p["group"] for p in chosen}  # noqa: E731
    assert test and validation and train
    assert not groups(train) & groups(test) and not groups(train) & groups(validation)
    assert not groups(test) & groups(validation)
    for chosen in (test, validation):  # every pair of a held-out group is held out with it
        for group in groups(chosen):
            assert sum(p["group"] == group for p in chosen) == 3
    assert all(p["source"] != "freedict" for p in test + validation)
    held = {everyday._key(p["spanish"]) for p in test + validation}
    assert not any(everyday._key(p["spanish"]) in held for p in train)
    assert everyday.split_groups(pairs, every={"tuxpaint": 5}) == (train, validation, test)  # deterministic


def test_held_out_gettext_is_capped():
    pairs = [pair("gettext", "gettext:big", f"frase {i}", f"sentence {i}") for i in range(50)]
    slot_zero = next(g for g in (f"gettext:g{n}" for n in range(100)) if everyday.group_slot(g, 8) == 0)
    for p in pairs:
        p["group"] = slot_zero
    _, _, test = everyday.split_groups(pairs, cap=7)
    assert len(test) == 7


def test_corpus_gets_everyday_splits_and_keeps_the_bible_splits(roots):
    bible = data.ParallelCorpus([data.Example("1:1:1/1of1", "1:1", "Y dijo Dios.", {"4": "God said."})],
                                [], [data.Example("1:7:1/1of1", "1:7", "sea la luz", {"4": "let there be light"})],
                                {"source": "bible"})
    corpus = data.add_everyday(bible, everyday.read_all(**roots))
    assert corpus.test == bible.test and corpus.train[0] == bible.train[0]
    added = corpus.train[1:] + corpus.everyday_validation + corpus.everyday_test
    assert added and all(e.domain == "everyday" for e in added)
    assert corpus.description["everyday"]["missing"] == []
    pairs = data.training_pairs(corpus.train, everyday_repeats=2)
    repeats = {e.origin: sum(1 for p in pairs if p[1] == data.source_text(e.source)) for e in corpus.train}
    assert repeats["bible"] == 1 and repeats.get("freedict", 1) == 1
    assert repeats.get("tuxpaint", 6) == 6 and repeats.get("gettext", 2) == 2


def test_short_everyday_keeps_the_bible_and_the_everyday_pairs_within_the_words():
    """--everyday-max-words (the quick look's): only everyday pairs of at most that many words on either side are
    trained and validated on; the Bible segments and the test splits are untouched."""
    def everyday_pair(key, spanish, english):
        return data.Example(key, "g", spanish, {"gettext": english}, domain="everyday", origin="gettext")

    long_bible = data.Example("1:1:1/1of1", "1:1", "Y dijo Dios sea la luz y fue la luz", {"4": "And God said."})
    short, long_spanish, long_english = (everyday_pair("a", "memoria agotada", "memory exhausted"),
                                         everyday_pair("b", "uno dos tres cuatro", "one"),
                                         everyday_pair("c", "uno", "one two three four"))
    corpus = data.ParallelCorpus([long_bible, short, long_spanish, long_english], [], [long_english],
                                 {"source": "bible"}, everyday_validation=[long_spanish, short],
                                 everyday_test=[long_spanish])
    cut = data.short_everyday(corpus, 3)
    assert cut.train == [long_bible, short] and cut.everyday_validation == [short]
    assert cut.test == [long_english] and cut.everyday_test == [long_spanish]
    assert cut.description == {"source": "bible", "everyday_max_words": 3}
    assert data.short_everyday(corpus, 4).train == corpus.train
