"""BLEU-4 prompt–output overlap on a 0–1 scale."""

import pytest

from specscope.workloads.overlap import bleu4_overlap

PROMPT = "def area(r):\n    return 3.14159 * r * r\n\nprint(area(2))"


def test_identical_texts_score_one():
    assert bleu4_overlap(PROMPT, PROMPT) == pytest.approx(1.0)


def test_disjoint_texts_score_zero():
    assert bleu4_overlap("the cat sat on the mat", "quantum flux capacitors hum loudly") == 0.0


def test_empty_output_scores_zero():
    assert bleu4_overlap(PROMPT, "") == 0.0
    assert bleu4_overlap("", "anything") == 0.0


def test_copying_most_of_the_prompt_scores_high_but_below_one():
    edited = PROMPT.replace("3.14159", "math.pi")
    score = bleu4_overlap(PROMPT, edited)
    assert 0.4 < score < 1.0
    assert score > bleu4_overlap(PROMPT, "The area of a circle is pi times the radius squared.")


def test_overlap_is_case_sensitive():
    assert bleu4_overlap("Hello World Again Today", "hello world again today") == 0.0
