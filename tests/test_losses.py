"""Losses against the formulas computed by hand."""

import torch

from restyle.losses import (
    ContentLoss,
    StyleLoss,
    content_loss,
    gram,
    relative_distance,
    style_loss,
    total_variation,
    weighted_style_loss,
)


def test_gram_matches_hand_computation() -> None:
    # One batch, 2 channels, 1x2 spatial: F = [[1, 2], [3, 4]].
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    # F F^T = [[5, 11], [11, 25]], normalised by C*H*W = 4.
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.allclose(gram(features), expected)


def test_gram_gradient_matches_autograd_reference() -> None:
    torch.manual_seed(4)
    x = torch.rand(2, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gram, (x,))
    weights = torch.rand(2, 5, 5, dtype=torch.float64)
    (ours,) = torch.autograd.grad((gram(x) * weights).sum(), x)
    flat = x.reshape(2, 5, 12)
    reference = torch.bmm(flat, flat.transpose(1, 2)) / 60
    (expected,) = torch.autograd.grad((reference * weights).sum(), x)
    assert torch.allclose(ours, expected)


def test_gram_is_independent_of_image_size_for_repeated_pattern() -> None:
    torch.manual_seed(0)
    tile = torch.rand(1, 8, 4, 4)
    big = tile.repeat(1, 1, 3, 3)  # the same statistics, 9x the positions
    assert torch.allclose(gram(tile), gram(big), atol=1e-6)


def test_content_and_style_losses_are_means_of_squares() -> None:
    a = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = torch.zeros_like(a)
    assert content_loss(a, b).item() == (1 + 4 + 9 + 16) / 4
    g1, g2 = torch.eye(3).unsqueeze(0), torch.zeros(1, 3, 3)
    assert style_loss(g1, g2).item() == torch.tensor(3 / 9).item()


def test_relative_distance_is_per_image() -> None:
    """‖a − b‖² / ‖b‖² for each image of a batch (the metrics' content distance)."""
    target = torch.tensor([[[[3.0, 4.0]]], [[[1.0, 0.0]]]])  # squared norms 25 and 1
    features = torch.tensor([[[[3.0, 9.0]]], [[[1.0, 0.0]]]])
    assert relative_distance(features, target).tolist() == [1.0, 0.0]
    assert relative_distance(target, torch.zeros_like(target)).min() > 1e6  # no division by 0


def test_weighted_style_loss_uses_per_layer_weights() -> None:
    torch.manual_seed(1)
    feats = {"a": torch.rand(1, 4, 5, 5), "b": torch.rand(1, 6, 3, 3)}
    targets = {k: gram(torch.rand_like(v)) for k, v in feats.items()}
    la = style_loss(gram(feats["a"]), targets["a"])
    lb = style_loss(gram(feats["b"]), targets["b"])
    got = weighted_style_loss(feats, targets, {"a": 2.0, "b": 0.5})
    assert torch.allclose(got, 2.0 * la + 0.5 * lb)
    only_a = weighted_style_loss(feats, targets, {"a": 1.0, "b": 0.0})
    assert torch.allclose(only_a, la)


def test_total_variation_by_hand() -> None:
    image = torch.tensor([[[[0.0, 1.0], [1.0, 3.0]]]])
    # |dx| = [1, 2] -> mean 1.5 ; |dy| = [1, 2] -> mean 1.5
    assert total_variation(image).item() == 3.0
    assert total_variation(torch.ones(1, 3, 4, 4)).item() == 0.0


def test_module_wrappers_match_functions() -> None:
    torch.manual_seed(2)
    target, x = torch.rand(1, 4, 6, 6), torch.rand(1, 4, 6, 6)
    assert torch.equal(ContentLoss(target)(x), content_loss(x, target))
    assert torch.equal(StyleLoss(target)(x), style_loss(gram(x), gram(target)))
