"""Table 10's image captioning: NIC (Vinyals et al., "Show and Tell", 2015) on an ImageNet ResNet-50, trained
on MS-COCO train2014 and scored on val2014 (the split the NIC code the paper cites evaluates on by default;
the paper does not say which), read through torchvision's ``CocoCaptions``.

- Vocabulary: lower-cased words (letters, digits and apostrophes) seen at least 5 times in the training
  captions, plus ``<pad>``, ``<start>``, ``<end>``, ``<unk>``.
- Model: the backbone's pooled 2048-d feature, projected to 512 (Linear + BatchNorm), is the LSTM's first
  input; then the word embeddings (512) of ``<start>`` w1 … wn; LSTM of 512; a linear layer to the words.
  The backbone is frozen by default (``task.train_encoder``), as in the common NIC code.
- Loss: teacher-forced cross entropy over the caption's words and ``<end>``. Test: beam search (beam 20 in
  the paper), the caption of the highest summed log-probability.
- Scores: BLEU-1, BLEU-4, METEOR, ROUGE-L and CIDEr from the COCO caption evaluation package
  (``pycocoevalcap``: its PTB tokenizer, then each scorer; SPICE is left out, it downloads a parser at run
  time). METEOR and the tokenizer run in Java: ``check_scorers`` says in one line what is missing.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..errors import ConfigError

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
WORD = re.compile(r"[a-z0-9']+")


def words(caption: str) -> list[str]:
    return WORD.findall(caption.lower())


class Vocabulary:
    def __init__(self, captions: Iterable[str], min_count: int = 5):
        counts = Counter(w for caption in captions for w in words(caption))
        self.itos = [PAD, START, END, UNK] + sorted(w for w, n in counts.items() if n >= min_count)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, caption: str) -> list[int]:
        """``<start>`` w1 … wn ``<end>`` as indices, unknown words as ``<unk>``."""
        unk = self.stoi[UNK]
        return [self.stoi[START], *(self.stoi.get(w, unk) for w in words(caption)), self.stoi[END]]

    def decode(self, indices: Iterable[int]) -> str:
        out = []
        for i in indices:
            word = self.itos[int(i)]
            if word == END:
                break
            if word not in (PAD, START):
                out.append(word)
        return " ".join(out)

    def state_dict(self) -> dict:
        return {"itos": list(self.itos)}

    @classmethod
    def from_state(cls, state: dict) -> Vocabulary:
        vocab = cls([], 1)
        vocab.itos = list(state["itos"])
        vocab.stoi = {w: i for i, w in enumerate(vocab.itos)}
        return vocab


class NIC(nn.Module):
    def __init__(self, encoder: nn.Module, vocab_size: int, embed: int = 512, hidden: int = 512,
                 train_encoder: bool = False):
        super().__init__()
        self.encoder = encoder  # images → 2048-d pooled features
        self.encoder.requires_grad_(train_encoder)
        self.train_encoder = train_encoder
        self.project = nn.Sequential(nn.Linear(2048, embed), nn.BatchNorm1d(embed))
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def train(self, mode: bool = True) -> NIC:
        super().train(mode)
        if not self.train_encoder:
            self.encoder.eval()  # a frozen encoder keeps its BatchNorm statistics
        return self

    def features(self, images: Tensor) -> Tensor:
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            pooled = self.encoder(images)
        return self.project(pooled)

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        """Logits (B × T × V) for the words after ``<start>``: the image feature is step 0's input, the
        embeddings of tokens[:, :-1] the next ones; step t predicts tokens[:, t]."""
        inputs = torch.cat([self.features(images)[:, None], self.embed(tokens[:, :-1])], 1)
        hidden, _ = self.lstm(inputs)
        return self.out(hidden[:, 1:])

    @torch.no_grad()
    def beam_search(self, images: Tensor, start: int, end: int, beam: int = 20, max_len: int = 20) -> list[list[int]]:
        """For each image, the word indices of the beam's best caption (``<end>`` not included)."""
        captions = []
        feats = self.features(images)
        for feat in feats:
            _, state = self.lstm(feat[None, None])
            beams = [(0.0, [start], state)]
            done: list[tuple[float, list[int]]] = []
            for _ in range(max_len):
                tokens = torch.tensor([b[1][-1] for b in beams], device=feat.device)
                h = torch.cat([b[2][0] for b in beams], 1)
                c = torch.cat([b[2][1] for b in beams], 1)
                out, (h, c) = self.lstm(self.embed(tokens)[:, None], (h, c))
                logp = self.out(out[:, 0]).log_softmax(-1)
                scores = torch.tensor([b[0] for b in beams], device=feat.device)[:, None] + logp
                top, index = scores.flatten().topk(min(beam, scores.numel()))
                candidates = []
                for score, flat in zip(top.tolist(), index.tolist()):
                    b, word = divmod(flat, logp.shape[1])
                    seq = beams[b][1] + [word]
                    if word == end:
                        done.append((score, seq[1:-1]))
                    else:
                        candidates.append((score, seq, (h[:, b:b + 1], c[:, b:b + 1])))
                beams = candidates[:beam - min(len(done), beam - 1)] if candidates else []
                if not beams or (done and max(d[0] for d in done) > beams[0][0]):
                    break
            done += [(b[0], b[1][1:]) for b in beams]
            captions.append(max(done, key=lambda d: d[0])[1])
        return captions


def resnet50_encoder(backbone) -> nn.Module:
    """torchvision's ResNet-50 with the backbone's weights, its classifier removed: images → 2048."""
    from .detection import resnet50_with

    net = resnet50_with(backbone, frozen_bn=False)
    net.fc = nn.Identity()
    return net


def pad(sequences: list[list[int]]) -> Tensor:
    length = max(len(s) for s in sequences)
    return torch.tensor([s + [0] * (length - len(s)) for s in sequences], dtype=torch.int64)


def caption_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Cross entropy over the words after ``<start>`` (padding left out)."""
    return nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=0)


# scores ----------------------------------------------------------------------------------------------
SCORES = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider")
JAVA_HINT = ("install a Java runtime (e.g. apt-get install default-jre-headless): METEOR and the PTB tokenizer "
             "of pycocoevalcap run in Java")


def check_scorers() -> None:
    """One error line when the caption scorers cannot run here."""
    try:
        import pycocoevalcap  # noqa: F401
    except ImportError:
        raise ConfigError("task", "coco_nic", "the caption scores need pycocoevalcap: "
                          "pip install -e '.[caption]'") from None
    if shutil.which("java") is None:
        raise ConfigError("task", "coco_nic", f"no java on this machine: {JAVA_HINT}")


def caption_scores(references: dict[int, list[str]], candidates: dict[int, str]) -> dict[str, float]:
    """The COCO caption scores (in percent, as Table 10 prints them) of one candidate per image against
    its references, through pycocoevalcap's PTB tokenizer and scorers."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    check_scorers()
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in refs] for i, refs in references.items()})
    res = tokenizer.tokenize({i: [{"caption": candidates[i]}] for i in references})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    meteor = Meteor()
    try:
        meteor_score, _ = meteor.compute_score(gts, res)
    finally:
        with meteor.lock:
            meteor.meteor_p.stdin.close()
            meteor.meteor_p.kill()
            meteor.meteor_p.wait()
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu_1": 100 * bleu[0], "bleu_4": 100 * bleu[3], "meteor": 100 * meteor_score,
            "rouge_l": 100 * rouge, "cider": 100 * cider}
