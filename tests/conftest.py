import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def unique_batch(n: int, c: int = 3, h: int = 32, w: int = 32, dtype=torch.float32) -> torch.Tensor:
    """Every value in the batch is distinct, so each output pixel names the image it came from."""
    return torch.arange(n * c * h * w, dtype=torch.float64).view(n, c, h, w).to(dtype)


def source_of(out: torch.Tensor, orig: torch.Tensor, channel: int = 0) -> torch.Tensor:
    """For each output pixel (n, h, w) of one channel, the index of the input image it came from."""
    n, c, h, w = orig.shape
    # values are unique: pixel value v belongs to image v // (c*h*w)
    return (out[:, channel].double() // (c * h * w)).long()
