"""The two kinds of Table 10 task, each: its data (checked before anything is written), its model on the
backbone, its loss on a batch, its evaluation (VOC07 mAP; the COCO caption scores) and what TensorBoard shows
of it (sample detections drawn on test images; sample captions beside their references)."""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.utils.data import DataLoader


class Detection:
    unused_parameters = False

    def __init__(self, cfg: DictConfig):
        self.cfg, self.root_cfg = cfg.task, cfg
        self.model_name = cfg.task.detector

    def load_data(self) -> None:
        from ..data.voc import VOCBoxes, test_transform, train_transform
        from .detection import DETECTORS, IMAGENET_MEAN

        if self.cfg.detector not in DETECTORS:
            from ..errors import ConfigError

            raise ConfigError("task.detector", self.cfg.detector, f"one of {', '.join(DETECTORS)}")
        kind = "ssd" if self.cfg.augment == "ssd" else "faster_rcnn"
        data = self.cfg.data
        self.train = VOCBoxes(data.root, list(data.train), keep_difficult=False,
                              transform=train_transform(kind, IMAGENET_MEAN))
        self.test = VOCBoxes(data.root, list(data.test), keep_difficult=True, transform=test_transform())

    def build_model(self, backbone) -> nn.Module:
        from omegaconf import OmegaConf

        from .detection import build_detector

        return build_detector(self.cfg.detector, backbone, **OmegaConf.to_container(self.cfg.model))

    def iterations(self, recipe) -> int:
        return int(recipe.iterations)

    def milestones(self, recipe) -> list[int]:
        return [int(m) for m in recipe.milestones]

    @staticmethod
    def collate(batch):
        from ..data.voc import collate

        return collate(batch)

    @staticmethod
    def _targets(targets: list[dict], device) -> list[dict]:
        return [{"boxes": t["boxes"].as_subclass(Tensor).to(device), "labels": t["labels"].to(device)}
                for t in targets]

    def losses(self, model, batch, device) -> dict[str, Tensor]:
        images, targets = batch
        return model([i.as_subclass(Tensor).to(device, non_blocking=True) for i in images],
                     self._targets(targets, device))

    @torch.no_grad()
    def predict(self, model, device, shard: tuple[int, int], samples: int):
        """(this rank's share of the test set as ImageDetections, up to ``samples`` (image, detections) to show):
        rank r of w takes images r, r + w, …"""
        from ..data.voc import collate
        from ..evaluation.voc_ap import ImageDetections

        model.eval()
        mine = torch.utils.data.Subset(self.test, range(shard[0], len(self.test), shard[1]))
        loader = DataLoader(mine, batch_size=4, num_workers=int(self.root_cfg.workers), collate_fn=collate)
        found, shown = [], []
        for images, targets in loader:
            outputs = model([i.as_subclass(Tensor).to(device) for i in images])
            for image, target, out in zip(images, targets, outputs):
                ann = self.test.target(target["index"])
                found.append(ImageDetections(out["boxes"].float().cpu().numpy(), out["scores"].float().cpu().numpy(),
                                             out["labels"].cpu().numpy(), ann.boxes.numpy(), ann.labels.numpy(),
                                             ann.difficult.numpy()))
                if len(shown) < samples:
                    shown.append((image, {k: v.cpu() for k, v in out.items()}))
        return found, shown

    def score(self, found: list):
        from ..data.voc import VOC_CLASSES
        from ..evaluation.voc_ap import voc07_map

        result = voc07_map(found, VOC_CLASSES, plus_one=bool(self.cfg.plus_one))
        return {"map": result["map"], "ap": result["ap"], "test_images": len(found)}, {}

    @staticmethod
    def describe_metrics(metrics: dict) -> str:
        return f"VOC07 mAP {metrics['map']:.2f} on {metrics['test_images']} test images"

    @staticmethod
    def log_metrics(writer, metrics: dict, samples, iteration: int) -> None:
        from torchvision.utils import draw_bounding_boxes, make_grid

        from ..data.voc import VOC_CLASSES

        if writer is None:
            return
        writer.add_scalar("test/map", metrics["map"], iteration)
        for name, value in metrics["ap"].items():
            writer.add_scalar(f"test_ap/{name}", value, iteration)
        drawn = []
        for image, out in samples:
            keep = out["scores"] >= 0.5
            if not keep.any():
                continue
            labels = [f"{VOC_CLASSES[int(c) - 1]} {s:.2f}" for c, s in zip(out["labels"][keep], out["scores"][keep])]
            pixels = (image.as_subclass(Tensor) * 255).round().to(torch.uint8)
            drawn.append(draw_bounding_boxes(pixels, out["boxes"][keep].float().cpu(), labels, colors="red", width=2))
        if drawn:
            size = max(d.shape[1] for d in drawn), max(d.shape[2] for d in drawn)
            padded = [nn.functional.pad(d, (0, size[1] - d.shape[2], 0, size[0] - d.shape[1])) for d in drawn]
            writer.add_image("test/detections (score ≥ 0.5)", make_grid(padded, nrow=2), iteration)


class Captioning:
    unused_parameters = False

    def __init__(self, cfg: DictConfig):
        self.cfg, self.root_cfg = cfg.task, cfg
        self.model_name = "nic_resnet50"

    def load_data(self) -> None:
        from ..data.coco_captions import Captions, transforms
        from .captioning import Vocabulary, check_scorers

        check_scorers()  # Java and pycocoevalcap, before training for hours
        data = self.cfg.data
        train_tf, test_tf = transforms(int(data.image_size))
        self.train = Captions(data.root, data.train_images, data.train_captions, train_tf, train=True)
        self.test = Captions(data.root, data.test_images, data.test_captions, test_tf, train=False)
        self.vocab = Vocabulary((c for refs in self.train.captions.values() for c in refs),
                                int(self.cfg.min_word_count))

    def build_model(self, backbone) -> nn.Module:
        from .captioning import NIC, resnet50_encoder

        return NIC(resnet50_encoder(backbone), len(self.vocab), int(self.cfg.embed), int(self.cfg.hidden),
                   bool(self.cfg.train_encoder))

    def iterations(self, recipe) -> int:
        return iterations_for_epochs(len(self.train), int(recipe.batch_size), float(recipe.epochs))

    def milestones(self, recipe) -> list[int]:
        per_epoch = len(self.train) // int(recipe.batch_size)
        return [int(m * per_epoch) for m in recipe.milestones]

    def collate(self, batch):
        from .captioning import pad

        images, captions = zip(*batch)
        return torch.stack(images), pad([self.vocab.encode(c) for c in captions])

    def losses(self, model, batch, device) -> dict[str, Tensor]:
        from .captioning import caption_loss

        images, tokens = (t.to(device, non_blocking=True) for t in batch)
        return {"caption": caption_loss(model(images, tokens).float(), tokens)}

    @torch.no_grad()
    def predict(self, model, device, shard: tuple[int, int], samples: int):
        """(this rank's share of the test images' captions as (image id, caption), the first ``samples`` to show)."""
        from .captioning import END, START

        model.eval()
        limit = min(int(self.cfg.eval_limit) or len(self.test), len(self.test))
        mine = torch.utils.data.Subset(self.test, range(shard[0], limit, shard[1]))
        loader = DataLoader(mine, batch_size=16, num_workers=int(self.root_cfg.workers))
        found = []
        for images, ids in loader:
            words = model.beam_search(images.to(device), self.vocab.stoi[START], self.vocab.stoi[END],
                                      int(self.cfg.beam), int(self.cfg.max_caption_length))
            found += [(i, self.vocab.decode(caption) or "<empty>") for i, caption in zip(ids.tolist(), words)]
        shown = [(i, c, self.test.captions[i]) for i, c in found[:samples]]
        return found, shown

    def score(self, found: list):
        from .captioning import caption_scores

        candidates = dict(found)
        scores = caption_scores({i: self.test.captions[i] for i in candidates}, candidates)
        files = {"captions.json": {"captions": {str(i): c for i, c in candidates.items()}}}
        return {**{k: float(v) for k, v in scores.items()}, "test_images": len(candidates)}, files

    @staticmethod
    def describe_metrics(metrics: dict) -> str:
        return " | ".join(f"{k} {metrics[k]:.2f}" for k in ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider")) + \
            f" on {metrics['test_images']} test images"

    @staticmethod
    def log_metrics(writer, metrics: dict, samples, iteration: int) -> None:
        if writer is None:
            return
        for name in ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider"):
            writer.add_scalar(f"test/{name}", metrics[name], iteration)
        lines = [f"**image {i}**: {caption}  \nreferences: " + " · ".join(refs) for i, caption, refs in samples]
        if lines:
            writer.add_text("test/captions", "\n\n".join(lines), iteration)


TASKS = {"detection": Detection, "captioning": Captioning}


def iterations_for_epochs(size: int, batch_size: int, epochs: float) -> int:
    """A recipe counted in epochs (NIC's), in iterations of full batches."""
    return max(1, math.floor(epochs * (size // batch_size)))
