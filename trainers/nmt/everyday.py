"""Everyday Spanish–English text found on these machines' package registries (see ../shared/DATA.md):

- `gettext`: the human translations of installed programs' interface strings, `/usr/share/locale/es/LC_MESSAGES/
  *.mo` (English msgid -> Spanish msgstr). Kept: single-line strings of 2-15 words without placeholders, markup,
  paths, options, identifiers or acronyms; mnemonics (`_Open`, `&Save`) removed; the toolchain, database and ISO
  code-list catalogues are left out whole (assembler errors and language names are not everyday language).
- `tuxpaint`: Tux Paint's stamp descriptions (Debian `tuxpaint-stamps-default`): the English first line of each
  stamp's `.txt` and its `es.utf8=` line.
- `asterisk`: Asterisk's phone prompts (Debian `asterisk-core-sounds-es` / `-en`, CC-BY-SA-3.0),
  `core-sounds-{es,en}.txt.gz` aligned by prompt id; bracketed sound descriptions left out.
- `freedict`: the FreeDict Spanish->English and English->Spanish dictionaries (Debian `dict-freedict-spa-eng`,
  `dict-freedict-eng-spa`, GPL-2+): headword and translations as word pairs. Training only (single words).

Every pair carries a *group*: a whole catalogue family (gtk20 and gtk30 are one family), a whole stamp folder, a
prompt-id family (`vm-`, `conf-`...). `split_groups` holds out whole groups for test and validation, never
neighbours of training pairs, and `deduplicate` removes from training and validation any pair whose Spanish is a
test pair's (UI strings repeat across catalogues).

    python -m trainers.nmt.everyday        # sizes per source and split, and a few test pairs
"""

from __future__ import annotations

import base64
import collections
import gettext
import gzip
import hashlib
import json
import re
import sys
import zlib
from pathlib import Path

LOCALE_DIR = Path("/usr/share/locale/es/LC_MESSAGES")
TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
ASTERISK_DOCS = Path("/usr/share/doc")
DICTD_DIR = Path("/usr/share/dictd")
SOURCES = ("gettext", "tuxpaint", "asterisk", "freedict")
SOURCE_NOTES = {
    "gettext": "gettext catalogues /usr/share/locale/es/LC_MESSAGES/*.mo of the installed Debian 12 packages "
               "(English msgid -> Spanish msgstr, interface strings; technical ones filtered out)",
    "tuxpaint": "Debian tuxpaint-stamps-default 2022.06.04-1: stamp descriptions (English line, es.utf8= line)",
    "asterisk": "Debian asterisk-core-sounds-es / -en 1.6.1-1 (CC-BY-SA-3.0): phone prompts aligned by id",
    "freedict": "Debian dict-freedict-spa-eng / dict-freedict-eng-spa 2022.04.21-1 (GPL-2+): dictionary words",
}
# Whole catalogues that are compiler, linker, database or code-list messages (families, see `catalogue_family`).
TECHNICAL_CATALOGUES = frozenset({
    "gas", "bfd", "binutils", "ld", "gold", "opcodes", "gprof", "elfutils", "gettext-tools", "postgres", "initdb",
    "psql", "plpgsql", "pgscripts", "libpq", "pg_amcheck", "pg_archivecleanup", "pg_basebackup", "pg_checksums",
    "pg_config", "pg_controldata", "pg_ctl", "pg_dump", "pg_resetwal", "pg_rewind", "pg_test_fsync",
    "pg_test_timing", "pg_upgrade", "pg_verifybackup", "pg_waldump", "iso", "libc", "gnutls", "libidn"})
MAX_WORDS = 15
# Anything that marks a string as technical: placeholders, markup, escapes, paths, options, code.
_TECHNICAL = re.compile(r"%|\$|\{|\}|<|>|\\|/|=|\||@|#|\*|~|\^|`|\[|\]|--|::|->|\b\w+_\w+\b|\b[a-z]+[A-Z]\w*|"
                        r"\b[A-Z][a-z]+[A-Z]\w*|\b[A-Z]{2,}\b|\b\w*\d\w*[a-zA-Z]\w*\b|\.\w{2,4}\b|https?:|www\.")
_MNEMONIC = re.compile(r"(?<![\w&])[_&](?=\w)")


def _pair(english: str, spanish: str, group: str, origin: str, key: str) -> dict:
    return {"english": english, "spanish": spanish, "group": group, "source": origin, "key": key}


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def clean_interface_string(text: str) -> str | None:
    """An interface string as a sentence, or None if it is technical (placeholders, markup, paths...)."""
    if not isinstance(text, str) or "\n" in text.strip() or "\t" in text:
        return None
    text = _MNEMONIC.sub("", text.strip()).replace("…", "...").strip()
    if not text or _TECHNICAL.search(text) or not re.search(r"[^\W\d_]{2}", text):
        return None
    return re.sub(r"\s+", " ", text)


def catalogue_family(name: str) -> str:
    """"gtk30-properties.mo" -> "gtk", "pg_dump-15.mo" -> "pg_dump", "iso_3166-1.mo" -> "iso"."""
    stem = Path(name).name.split(".mo")[0]
    stem = re.sub(r"-properties$", "", stem)
    stem = re.sub(r"(-gnulib)$", "", stem)
    if stem.startswith("iso"):
        return "iso"
    return re.sub(r"[-_]?\d+(\.\d+)?$", "", re.sub(r"-\d+$", "", stem)) or stem


def read_gettext(folder: Path = LOCALE_DIR) -> list[dict]:
    """English->Spanish pairs from every non-technical `.mo` catalogue in `folder` (2-15 words, cleaned)."""
    pairs = []
    for path in sorted(Path(folder).glob("*.mo")):
        family = catalogue_family(path.name)
        if family in TECHNICAL_CATALOGUES:
            continue
        try:
            with open(path, "rb") as handle:
                catalogue = gettext.GNUTranslations(handle)._catalog
        except (OSError, gettext.error if hasattr(gettext, "error") else OSError, ValueError, KeyError):
            continue
        for msgid, msgstr in catalogue.items():
            if isinstance(msgid, tuple) or not msgid or not isinstance(msgstr, str):
                continue
            msgid = msgid.split("\x04")[-1]  # drop a message context
            english, spanish = clean_interface_string(msgid), clean_interface_string(msgstr)
            if not english or not spanish or english.lower() == spanish.lower():
                continue
            english_words, spanish_words = _words(english), _words(spanish)
            if not 2 <= english_words <= MAX_WORDS or not 1 <= spanish_words <= MAX_WORDS + 5:
                continue
            if not 0.4 <= spanish_words / english_words <= 2.5:
                continue
            pairs.append(_pair(english, spanish, f"gettext:{family}", "gettext", f"{path.stem}:{msgid[:60]}"))
    return pairs


def read_tuxpaint(folder: Path = TUXPAINT_DIR) -> list[dict]:
    """(English first line, `es.utf8=` line) of every stamp description under `folder`; group: its folder."""
    pairs = []
    for path in sorted(Path(folder).rglob("*.txt")):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        english = lines[0].strip() if lines else ""
        spanish = next((line.split("=", 1)[1].strip() for line in lines[1:] if line.startswith("es.utf8=")), "")
        if english and spanish and "=" not in english and _words(english) <= 25:
            group = path.parent.relative_to(folder).as_posix()
            pairs.append(_pair(english, spanish, f"tuxpaint:{group}", "tuxpaint", f"{group}/{path.stem}"))
    return pairs


def read_prompts(path: Path) -> dict[str, str]:
    """{prompt id: text} from an Asterisk `core-sounds-*.txt(.gz)` list (`id: text` lines; `;` comments)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    prompts = {}
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if ":" not in line or line.startswith(";"):
                continue
            prompt, text = line.split(":", 1)
            text = text.strip()
            if prompt.strip() and text and not text.startswith("["):
                prompts[prompt.strip()] = re.sub(r"\s+", " ", text)
    return prompts


def prompt_family(prompt: str) -> str:
    """"vm-password" -> "vm", "conf-adminmenu-18" -> "conf", "digits/7" -> "digits"."""
    return re.split(r"[-_/]", prompt, maxsplit=1)[0]


def read_asterisk(docs: Path = ASTERISK_DOCS) -> list[dict]:
    """Spanish and English phone prompts with the same id; group: the id's family."""
    found = {}
    for language in ("es", "en"):
        path = Path(docs) / f"asterisk-core-sounds-{language}" / f"core-sounds-{language}.txt.gz"
        if not path.exists():
            path = path.with_suffix("")  # an uncompressed copy
        if not path.exists():
            return []
        found[language] = read_prompts(path)
    return [_pair(found["en"][prompt], found["es"][prompt], f"asterisk:{prompt_family(prompt)}", "asterisk", prompt)
            for prompt in sorted(set(found["es"]) & set(found["en"]))]


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _dictd_number(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + _B64.index(char)
    return value


def read_dictd(index: Path, dictionary: Path) -> list[tuple[str, list[str]]]:
    """(headword, translations) from a dictd `.index` + `.dict(.dz)` pair (FreeDict's format: the entry is the
    headword line with its pronunciation, then one translation per line, some comma-separated)."""
    raw = Path(dictionary).read_bytes()
    if str(dictionary).endswith(".dz"):
        raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)  # dictzip is gzip with random-access chunks
    entries = []
    for line in Path(index).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00database"):
            continue
        body = raw[_dictd_number(parts[1]): _dictd_number(parts[1]) + _dictd_number(parts[2])].decode("utf-8",
                                                                                                     "replace")
        lines = [text.strip() for text in body.splitlines() if text.strip()]
        translations = [re.sub(r"^\d+\.\s*", "", t.strip()) for text in lines[1:] for t in re.split(r"[,;]", text)]
        translations = [t for t in translations if t]
        translations = [t for t in translations if not _TECHNICAL.search(t) and _words(t) <= 4]
        if translations:
            entries.append((parts[0], translations[:3]))
    return entries


def read_freedict(folder: Path = DICTD_DIR) -> list[dict]:
    """Word pairs from FreeDict Spanish->English and English->Spanish (whichever is installed)."""
    pairs = []
    for direction in ("spa-eng", "eng-spa"):
        index, dictionary = Path(folder) / f"freedict-{direction}.index", Path(folder) / f"freedict-{direction}.dict.dz"
        if not index.exists() or not dictionary.exists():
            continue
        for headword, translations in read_dictd(index, dictionary):
            for translation in translations:
                english, spanish = (translation, headword) if direction == "spa-eng" else (headword, translation)
                pairs.append(_pair(english, spanish, "freedict", "freedict", f"{direction}:{headword}"))
    return pairs


def read_all(locale_dir: Path = LOCALE_DIR, tuxpaint_dir: Path = TUXPAINT_DIR, asterisk_docs: Path = ASTERISK_DOCS,
             dictd_dir: Path = DICTD_DIR) -> dict[str, list[dict]]:
    """{source: pairs} for every everyday source (an absent package gives an empty list)."""
    readers = {"gettext": lambda: read_gettext(locale_dir), "tuxpaint": lambda: read_tuxpaint(tuxpaint_dir),
               "asterisk": lambda: read_asterisk(asterisk_docs), "freedict": lambda: read_freedict(dictd_dir)}
    return {source: (reader() if Path(root).exists() else [])
            for (source, reader), root in zip(readers.items(), (locale_dir, tuxpaint_dir, asterisk_docs, dictd_dir))}


# ---------------------------------------------------------------- splits

# Which groups are held out: a group's slot is a hash of its name; slot 0 is test and slot 1 validation, out of
# `every` slots per source (Tux Paint and Asterisk have few, small groups: a larger share). freedict (single
# words) only trains; the two largest catalogue families and the keyboard-layout names always train. Held-out
# gettext groups are large, so test and validation keep at most `GETTEXT_HELD_OUT_CAP` pairs each (chosen by a
# hash of the pair); the rest of those groups is used for nothing.
EVERY = {"gettext": 8, "tuxpaint": 5, "asterisk": 4}
ALWAYS_TRAIN = frozenset({"gettext:gtk", "gettext:git", "gettext:xkeyboard-config"})
GETTEXT_HELD_OUT_CAP = 400


def group_slot(group: str, every: int) -> int:
    """A stable slot 0..every-1 for a group, from a hash of its name."""
    return int(hashlib.sha1(group.encode()).hexdigest()[:8], 16) % every


def split_groups(pairs: list[dict], every: dict | None = None, cap: int = GETTEXT_HELD_OUT_CAP):
    """(train, validation, test): whole groups held out by `group_slot` (see EVERY), then `deduplicate`."""
    every = {**EVERY, **(every or {})}

    def slot(pair):
        if pair["source"] not in every or pair["group"] in ALWAYS_TRAIN:
            return -1
        return group_slot(pair["group"], every[pair["source"]])

    test = _capped([p for p in pairs if slot(p) == 0], cap)
    validation = _capped([p for p in pairs if slot(p) == 1], cap)
    train = [p for p in pairs if slot(p) not in (0, 1)]
    return deduplicate(train, validation, test)


def _capped(pairs: list[dict], cap: int) -> list[dict]:
    """At most `cap` gettext pairs (those with the smallest hash of their key); other sources untouched."""
    interface = sorted((p for p in pairs if p["source"] == "gettext"),
                       key=lambda p: hashlib.sha1(p["key"].encode()).hexdigest())
    chosen = {id(p) for p in interface[:cap]}
    return [p for p in pairs if p["source"] != "gettext" or id(p) in chosen]


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def deduplicate(train: list[dict], validation: list[dict], test: list[dict]):
    """Each Spanish text once per split, and a test Spanish (or English) text in no other split; a validation text
    not in train."""
    def unique(pairs, banned):
        seen, kept = set(), []
        for pair in pairs:
            spanish, english = _key(pair["spanish"]), _key(pair["english"])
            if spanish in seen or spanish in banned or english in banned:
                continue
            seen.add(spanish)
            kept.append(pair)
        return kept

    test = unique(test, set())
    test_keys = {_key(p["spanish"]) for p in test} | {_key(p["english"]) for p in test}
    validation = unique(validation, test_keys)
    held = test_keys | {_key(p["spanish"]) for p in validation} | {_key(p["english"]) for p in validation}
    # Training keeps every translation of a Spanish text (a dictionary word has several), but none held out.
    train = [p for p in train if _key(p["spanish"]) not in held and _key(p["english"]) not in held]
    return train, validation, test


def describe(train, validation, test) -> dict:
    count = lambda pairs: dict(sorted(collections.Counter(p["source"] for p in pairs).items()))  # noqa: E731
    groups = lambda pairs: sorted({p["group"] for p in pairs})  # noqa: E731
    return {"train_pairs_by_source": count(train), "validation_pairs_by_source": count(validation),
            "test_pairs_by_source": count(test), "test_groups": groups(test), "validation_groups": groups(validation)}


def main() -> None:
    everything = [pair for pairs in read_all().values() for pair in pairs]
    train, validation, test = split_groups(everything)
    print(json.dumps(describe(train, validation, test), indent=1))
    for pair in test[::max(len(test) // 12, 1)][:12]:
        print(pair["group"], "|", pair["spanish"], "|", pair["english"])


if __name__ == "__main__":
    sys.exit(main())
