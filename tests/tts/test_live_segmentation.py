"""Text that is still being written, cut into units to speak (``LiveSegmenter``) and spoken by the SDK
(``speak_live``): a unit is returned by the very fragment that shows it has ended and not before, never cut in
a number, after an abbreviation or inside a speaker turn, the same however the text is fragmented, and no
word is ever dropped.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechserve.options import SynthesisOptions
from speechserve.tts.live import LiveSpeech, speak_live
from speechserve.tts.segmentation import LiveSegmenter

PROSE = (
    "Dr. Smith paid $3.14 for 1,000 apples, e.g. the red ones. Then he left! Why? Mr. Jones, who "
    "stayed, said: no way — not today.\nA new line starts here; it ends here… 你好。我很好！Done"
)
SCRIPT = "[S1] Hello there. How are you? [S2] Fine, thanks. (laughs) [S1] Good. [S2] Bye!"


def feed_all(segmenter: LiveSegmenter, fragments: list[str]) -> list[tuple[int, str]]:
    """(index of the fragment that returned it, unit) for every unit; flush counts as fragment ``len``."""
    out = [(i, u) for i, f in enumerate(fragments) for u in segmenter.feed(f)]
    return out + [(len(fragments), u) for u in segmenter.flush()]


def chars(text: str) -> list[str]:
    return list(text)


def random_fragments(text: str, seed: int) -> list[str]:
    rng, cuts = random.Random(seed), []
    i = 0
    while i < len(text):
        step = rng.randint(1, 6)
        cuts.append(text[i : i + step])
        i += step
    return cuts


def words(units: list[str]) -> list[str]:
    return " ".join(units).split()


# ---- when a unit comes out ---------------------------------------------------------------------------------------
def test_a_sentence_comes_out_with_the_first_character_after_its_end_not_before() -> None:
    got = feed_all(LiveSegmenter("sentence"), ["Hello", " there", ".", " How", " are", " you", "?"])
    assert got == [(3, "Hello there."), (7, "How are you?")]  # " How" shows "." ended it; "?" waits for flush


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("It costs 3.14 today. Yes", ["It costs 3.14 today.", "Yes"]),
        ("We sold 1,000,000 units, a record run. Yes", ["We sold 1,000,000 units, a record run.", "Yes"]),
        (
            "Dr. Smith and Mrs. Jones met, e.g. at St. Mary's. Yes",
            ["Dr. Smith and Mrs. Jones met, e.g. at St. Mary's.", "Yes"],
        ),
        ('She said "Go!" and left. Yes', ['She said "Go!"', "and left.", "Yes"]),
        ("Wait... what?! Yes", ["Wait...", "what?!", "Yes"]),
        ("J. R. R. Tolkien wrote it. Yes", ["J. R. R. Tolkien wrote it.", "Yes"]),
        ("你好。我很好！谢谢", ["你好。", "我很好！", "谢谢"]),
        ("first line\nsecond line", ["first line", "second line"]),
    ],
)
def test_sentences_are_never_cut_in_numbers_or_after_abbreviations(text: str, units: list[str]) -> None:
    assert [u for _, u in feed_all(LiveSegmenter("sentence"), chars(text))] == units


def test_clauses_come_out_at_their_punctuation_but_a_lone_short_word_waits() -> None:
    text = "Well, I think so, because the sky is blue; it was — and is — lovely. Fine"
    got = [u for _, u in feed_all(LiveSegmenter("clause"), chars(text))]
    assert got == ["Well, I think so,", "because the sky is blue;", "it was — and is —", "lovely.", "Fine"]


def test_granularity_none_waits_for_the_flush_unless_the_text_outgrows_max_chars() -> None:
    seg = LiveSegmenter("none", max_chars=30)
    assert seg.feed("One. Two, three. ") == [] and seg.pending == "One. Two, three. "
    assert seg.feed("Four five six seven eight") == ["One. Two, three."]  # 42 characters: cut at the sentence
    assert seg.flush() == ["Four five six seven eight"] and seg.pending == ""


def test_a_long_unit_is_cut_at_its_strongest_break_within_max_chars() -> None:
    text = "alpha beta gamma, delta epsilon zeta eta theta iota kappa lambda. Mu"
    got = [u for _, u in feed_all(LiveSegmenter("sentence", max_chars=30), chars(text))]
    assert got == ["alpha beta gamma,", "delta epsilon zeta eta theta", "iota kappa lambda.", "Mu"]
    assert all(len(u) <= 30 for u in got)


# ---- scripts: whole speaker turns -----------------------------------------------------------------------------------
def test_a_turn_comes_out_when_the_next_tag_is_complete_and_is_never_cut_inside() -> None:
    fragments = ["[S", "1]", " Hello", " there", ".", " How", " are", " you", "?", " [S", "2]", " Fine", "."]
    got = feed_all(LiveSegmenter("clause"), fragments)
    assert got == [(10, "[S1] Hello there. How are you?"), (13, "[S2] Fine.")]


def test_a_turn_longer_than_max_chars_is_cut_with_its_tag_repeated() -> None:
    text = "[S1] " + "word " * 20 + "end. [S2] Short."
    got = [u for _, u in feed_all(LiveSegmenter("sentence", max_chars=40), chars(text))]
    assert all(u.startswith("[S1] ") for u in got[:-1]) and got[-1] == "[S2] Short."
    assert all(len(u) <= 40 for u in got)
    assert [w for u in got for w in u.split() if w not in ("[S1]", "[S2]")] == ["word"] * 20 + [
        "end.",
        "Short.",
    ]


def test_text_before_the_first_tag_is_its_own_unit() -> None:
    assert [u for _, u in feed_all(LiveSegmenter(), chars("Intro words [S1] Hi. [S2] Yo."))] == [
        "Intro words", "[S1] Hi.", "[S2] Yo."
    ]  # fmt: skip


# ---- the same whatever the fragments, and nothing dropped ------------------------------------------------------------
@pytest.mark.parametrize("granularity", ["none", "sentence", "clause"])
@pytest.mark.parametrize("text", [PROSE, SCRIPT])
def test_units_do_not_depend_on_how_the_text_was_fragmented(granularity: str, text: str) -> None:
    whole = [u for _, u in feed_all(LiveSegmenter(granularity), [text])]  # type: ignore[arg-type]
    for seed in range(5):
        pieces = random_fragments(text, seed)
        assert [u for _, u in feed_all(LiveSegmenter(granularity), pieces)] == whole  # type: ignore[arg-type]
    assert "".join(words(whole)) == "".join(text.split())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "word",
                "3.14",
                "1,000",
                "Dr.",
                "e.g.",
                "end.",
                "yes!",
                "no?",
                ",",
                ";",
                " ",
                "\n",
                "[S1]",
                "[S2]",
                "—",
                '"',
                "。",
                "x" * 25,
            ]
        ),
        max_size=60,
    ),
    st.sampled_from(["none", "sentence", "clause"]),
    st.integers(min_value=5, max_value=80),
    st.integers(min_value=0, max_value=1000),
)
def test_no_character_is_ever_dropped(tokens: list[str], granularity: str, max_chars: int, seed: int) -> None:
    text = " ".join(tokens)
    got = [u for _, u in feed_all(LiveSegmenter(granularity, max_chars), random_fragments(text, seed))]  # type: ignore[arg-type]
    assert all(u and u == u.strip() for u in got)
    assert not any(re.sub(r"\[S\d\]", "", u).count("[") for u in got)  # no tag cut in two
    assert not any(re.fullmatch(r"\[S\d\]", u) for u in got)  # nor a bare tag spoken
    spoken = "".join("".join(got).split())
    for tag in ("[S1]", "[S2]"):  # a cut turn repeats its tag: compare without tags
        spoken, text = spoken.replace(tag, ""), text.replace(tag, "")
    assert spoken == "".join(text.split())


def test_clear_drops_only_the_unspoken_text() -> None:
    seg = LiveSegmenter("sentence")
    assert seg.feed("Spoken already. Not yet spo") == ["Spoken already."]
    assert seg.clear() == "Not yet spo" and seg.flush() == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="granularity"):
        LiveSegmenter("word")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_chars"):
        LiveSegmenter("sentence", max_chars=0)


# ---- the SDK: pieces in, chunks out -----------------------------------------------------------------------------------
def test_speak_live_starts_before_the_text_is_written_and_each_sentence_is_synthesize(tiny_tts) -> None:
    options = SynthesisOptions(seed=5, max_frames=6)
    tokens = ["Hello", " there", ",", " my", " friend", ".", " Bye", " now", "."]
    pulled = []

    def llm():  # the generator an LLM client would hand over
        for token in tokens:
            pulled.append(token)
            yield token

    chunks = speak_live(tiny_tts, llm(), voice="casual_male", options=options, granularity="clause")
    first = next(chunks)
    assert first.sentence_text == "Hello there," and len(pulled) == 4  # " my" was the last token read
    got = [first, *chunks]
    assert [c.sentence_index for c in got if c.is_last] == [0, 1, 2]
    for index, text in enumerate(["Hello there,", "my friend.", "Bye now."]):
        audio = np.concatenate([c.samples for c in got if c.sentence_index == index])
        alone = tiny_tts.generate(text, "casual_male", options).samples
        assert np.array_equal(audio, alone), text


def test_cancel_drops_the_pending_text_and_the_next_sentences_go_on(tiny_tts) -> None:
    live = LiveSpeech(tiny_tts, voice="fr_female", options=SynthesisOptions(seed=1, max_frames=4))
    assert list(live.feed("Half a sent")) == []
    assert live.cancel() == "Half a sent"
    chunks = [*live.feed("Fresh start. "), *live.flush()]
    assert {c.sentence_text for c in chunks} == {"Fresh start."} and chunks[-1].is_last
    assert sum(len(c.samples) for c in chunks) == len(tiny_tts.generate("Fresh start.", "fr_female", SynthesisOptions(seed=1, max_frames=4)).samples)  # fmt: skip


def test_a_bare_tag_is_not_a_unit() -> None:
    got = [u for _, u in feed_all(LiveSegmenter("sentence", max_chars=8), chars("[S1] [S2] Hi. [S1]"))]
    assert got == ["[S2] Hi."]
