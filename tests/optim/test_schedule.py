import pytest

from dimcollapse.errors import UserError
from dimcollapse.optim import scaled_lr, warmup_cosine


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.0),  # warm-up starts at 0, as the official code
        (5, 0.5),
        (9, 0.9),
        (10, 1.0),  # peak at the end of warm-up
        (40, 0.75),  # t = 1/3: (1 + cos(pi/3)) / 2 = 0.75
        (55, 0.5),  # t = 1/2
        (70, 0.25),  # t = 2/3
        (100, 0.0),
        (150, 0.0),  # stays at final_lr after the schedule
    ],
)
def test_golden_values(step, expected):
    lr = warmup_cosine(step, total_steps=100, warmup_steps=10, base_lr=1.0)
    assert lr == pytest.approx(expected, abs=1e-15)


def test_final_lr_and_scaling():
    kw = dict(total_steps=100, warmup_steps=10, base_lr=4.8, final_lr=0.0048)
    assert warmup_cosine(55, **kw) == pytest.approx(0.0048 + (4.8 - 0.0048) * 0.5)
    assert warmup_cosine(100, **kw) == pytest.approx(0.0048)
    assert warmup_cosine(0, total_steps=10, warmup_steps=0, base_lr=2.0) == 2.0
    assert warmup_cosine(3, total_steps=4, warmup_steps=4, base_lr=2.0) == 1.5
    assert warmup_cosine(4, total_steps=4, warmup_steps=4, base_lr=2.0, final_lr=0.1) == 0.1


def test_monotone_after_warmup():
    lrs = [warmup_cosine(s, total_steps=50, warmup_steps=5, base_lr=1.0) for s in range(51)]
    assert all(a <= b for a, b in zip(lrs[:5], lrs[1:6], strict=True))
    assert all(a >= b for a, b in zip(lrs[5:-1], lrs[6:], strict=True))


def test_scaled_lr_is_the_papers_rule():
    assert scaled_lr(0.3, 4096) == pytest.approx(4.8)
    assert scaled_lr(0.3, 256) == pytest.approx(0.3)
    assert scaled_lr(1.0, 512, reference=128) == 4.0


def test_bad_schedules():
    with pytest.raises(UserError, match="warmup_steps"):
        warmup_cosine(0, total_steps=10, warmup_steps=11, base_lr=1.0)
    with pytest.raises(ValueError, match="step"):
        warmup_cosine(-1, total_steps=10, warmup_steps=1, base_lr=1.0)
