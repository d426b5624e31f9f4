"""Peak bytes of the tensors a torch call allocates (the `contact_gnn` bench's memory figure),
counted by a dispatch mode on the CPU: exact for new storages, nothing for views and in-place
results, freed storages released."""

import torch

from engine.diff.tensor_memory import PeakTensorBytes, peak_call_bytes


def test_new_storages_count_until_freed_and_views_count_nothing():
    a = torch.ones(1000, dtype=torch.float64)  # from before: not counted
    with torch.no_grad(), PeakTensorBytes() as counter:
        b = a * 2.0
        c = b + 1.0
        assert counter.live == counter.peak == 16_000
        del b
        assert counter.live == 8_000
        c.view(10, 100).t().add_(1.0)
        a[:10].mul_(3.0)
        assert counter.live == 8_000 and counter.peak == 16_000
        del c
        assert counter.live == 0


def test_a_call_counts_its_temporaries_and_its_result():
    def call():
        return (torch.ones(10, 10, dtype=torch.float64) * 3.0).sum()

    # the ones and the product; the ones are freed before the sum (8 B) is taken
    assert peak_call_bytes(call, "cpu") == 800 + 800
